"""Teams belong to one event (a user is in one team per event), events get
their rules, and the web sandbox, credits, profiles and the audit trail
appear. Existing sign-ups become per-event teams with the same name, members
and submissions."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def teams_per_event(apps, schema_editor):
    EventTeam = apps.get_model("databoard", "EventTeam")
    Team = apps.get_model("databoard", "Team")
    TeamMember = apps.get_model("databoard", "TeamMember")
    Submission = apps.get_model("databoard", "Submission")
    for signup in EventTeam.objects.select_related("team", "event").order_by("id"):
        team = Team.objects.create(event=signup.event, name=signup.team.name,
                                   approved=signup.approved)
        for user in signup.team.members.all():
            # A user in two signed-up teams of one event keeps the first.
            if not TeamMember.objects.filter(event=signup.event, user=user).exists():
                TeamMember.objects.create(team=team, user=user, event=signup.event)
        Submission.objects.filter(event_team=signup).update(team=team)


class Migration(migrations.Migration):

    dependencies = [
        ("databoard", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='submission', name='submission_name_unique_per_team'),
        migrations.RemoveConstraint(model_name='eventteam', name='event_team_unique'),
        migrations.RenameModel('Team', 'LegacyTeam'),
        migrations.AlterField(
            model_name='legacyteam', name='members',
            field=models.ManyToManyField(related_name='+', to=settings.AUTH_USER_MODEL)),
        migrations.AlterField(model_name='event', name='description', field=models.TextField(blank=True, help_text='Markdown')),
        migrations.AlterField(model_name='event', name='is_public', field=models.BooleanField(default=True, help_text='listed and visible to everyone')),
        migrations.AlterField(model_name='event', name='opens_at', field=models.DateTimeField(blank=True, help_text='submissions accepted from', null=True)),
        migrations.AddField(model_name='event', name='public_opens_at', field=models.DateTimeField(blank=True, help_text="collaborative phase: participants read each other's code from then on (empty: never)", null=True)),
        migrations.AlterField(model_name='event', name='closes_at', field=models.DateTimeField(blank=True, help_text='submissions refused from; private scores become public', null=True)),
        migrations.AddField(model_name='event', name='min_submission_interval_s', field=models.PositiveIntegerField(default=0, help_text='seconds a team waits between two submissions (0: none)')),
        migrations.AddField(model_name='event', name='max_submissions_per_day', field=models.PositiveIntegerField(blank=True, help_text='per team in any 24 hours (empty: no quota)', null=True)),
        migrations.AddField(model_name='event', name='is_competitive', field=models.BooleanField(default=False, help_text='teams select one submission for the competition leaderboard')),
        migrations.AddField(model_name='event', name='leaderboard_kind', field=models.CharField(choices=[('bagged', 'bagged (RAMP: out-of-fold / averaged fold models)'), ('mean', 'mean over folds')], default='bagged', max_length=10)),
        migrations.AddField(model_name='event', name='signup_requires_approval', field=models.BooleanField(default=False)),
        migrations.AddField(model_name='event', name='max_team_size', field=models.PositiveSmallIntegerField(default=5)),
        migrations.AddField(model_name='event', name='contributivity_due_at', field=models.DateTimeField(blank=True, editable=False, null=True)),
        migrations.CreateModel(
            name='Team',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('approved', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='teams', to='databoard.event')),
            ],
            options={
                'ordering': ['event', 'name'],
            },
        ),
        migrations.CreateModel(
            name='TeamMember',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('joined_at', models.DateTimeField(auto_now_add=True)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='databoard.event')),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='databoard.team')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='team_memberships', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.AddField(
            model_name='team',
            name='members',
            field=models.ManyToManyField(related_name='teams', through='databoard.TeamMember', to=settings.AUTH_USER_MODEL),
        ),
        migrations.CreateModel(
            name='TeamInvitation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('invited_by', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='databoard.team')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='team_invitations', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.AddField(
            model_name='submission', name='team',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='submissions', to='databoard.team')),
        migrations.AddField(model_name='submission', name='previous_evaluation_ids', field=models.JSONField(blank=True, default=list)),
        migrations.AddField(model_name='submission', name='contributivity', field=models.FloatField(blank=True, null=True)),
        migrations.RunPython(teams_per_event, migrations.RunPython.noop),
        migrations.RemoveField(model_name='submission', name='event_team'),
        migrations.AlterField(
            model_name='submission', name='team',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='submissions', to='databoard.team')),
        migrations.DeleteModel('EventTeam'),
        migrations.DeleteModel('LegacyTeam'),
        migrations.AddField(
            model_name='team', name='selected_submission',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='databoard.submission')),
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(max_length=50)),
                ('data', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('event', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='audit_entries', to='databoard.event')),
            ],
            options={
                'verbose_name_plural': 'audit entries',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='Profile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('affiliation', models.CharField(blank=True, max_length=200)),
                ('time_zone', models.CharField(blank=True, help_text="IANA name, e.g. Europe/Paris (empty: the browser's)", max_length=64)),
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='profile', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.CreateModel(
            name='SandboxImport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('imported_at', models.DateTimeField(auto_now_add=True)),
                ('source', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='databoard.submission')),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sandbox_imports', to='databoard.team')),
            ],
        ),
        migrations.CreateModel(
            name='SandboxFile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('file_name', models.CharField(max_length=100)),
                ('content', models.TextField(blank=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('updated_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sandbox_files', to='databoard.team')),
            ],
        ),
        migrations.CreateModel(
            name='SubmissionCredit',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='credited_by', to='databoard.submission')),
                ('submission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='credits', to='databoard.submission')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('submission', 'source'), name='credit_unique')],
            },
        ),
        migrations.AddConstraint(
            model_name='submission',
            constraint=models.UniqueConstraint(fields=('team', 'name'), name='submission_name_unique_per_team'),
        ),
        migrations.AddConstraint(
            model_name='sandboximport',
            constraint=models.UniqueConstraint(fields=('team', 'source'), name='sandbox_import_unique'),
        ),
        migrations.AddConstraint(
            model_name='sandboxfile',
            constraint=models.UniqueConstraint(fields=('team', 'file_name'), name='sandbox_file_unique'),
        ),
        migrations.AddConstraint(
            model_name='teaminvitation',
            constraint=models.UniqueConstraint(fields=('team', 'user'), name='one_invitation_per_team'),
        ),
        migrations.AddConstraint(
            model_name='teammember',
            constraint=models.UniqueConstraint(fields=('event', 'user'), name='one_team_per_event'),
        ),
        migrations.AddConstraint(
            model_name='team',
            constraint=models.UniqueConstraint(fields=('event', 'name'), name='team_name_unique_per_event'),
        ),
    ]
