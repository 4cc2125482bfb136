from django.apps import AppConfig


class DataboardConfig(AppConfig):
    name = "databoard"
    verbose_name = "Databoard"

    def ready(self):
        from datarun.signals import evaluation_scored

        evaluation_scored.connect(_on_evaluation_scored, dispatch_uid="databoard-leaderboard")


def _on_evaluation_scored(sender, evaluation_id, **kwargs):
    from databoard.services.contributivity import contributivity_schedule
    from databoard.services.leaderboards import leaderboard_evaluation_scored

    leaderboard_evaluation_scored(evaluation_id=evaluation_id)
    contributivity_schedule(evaluation_id=evaluation_id)
