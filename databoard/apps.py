from django.apps import AppConfig


class DataboardConfig(AppConfig):
    name = "databoard"
    verbose_name = "Databoard"

    def ready(self):
        from datarun.signals import evaluation_failed, evaluation_scored

        evaluation_scored.connect(_on_evaluation_scored, dispatch_uid="databoard-leaderboard")
        evaluation_failed.connect(_on_evaluation_failed, dispatch_uid="databoard-failed")


def _on_evaluation_scored(sender, evaluation_id, **kwargs):
    from databoard.services.contributivity import contributivity_schedule
    from databoard.services.leaderboards import leaderboard_evaluation_scored
    from databoard.services.notifications import notifications_schedule

    leaderboard_evaluation_scored(evaluation_id=evaluation_id)
    contributivity_schedule(evaluation_id=evaluation_id)
    notifications_schedule(evaluation_id=evaluation_id)


def _on_evaluation_failed(sender, evaluation_id, **kwargs):
    from databoard.services.notifications import notifications_schedule

    notifications_schedule(evaluation_id=evaluation_id)
