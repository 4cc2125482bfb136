from pathlib import Path

from django.core.management.base import BaseCommand

from databoard.models import Event
from datarun import services
from datarun.models import Problem

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "datarun" / "examples"
DESCRIPTIONS = {
    "iris": "Classify iris flowers into three species from four measurements.",
    "breast_cancer": "Tell malignant from benign tumours from 30 cell-nucleus features.",
    "diabetes": "Predict disease progression one year ahead from ten baseline variables.",
}


class Command(BaseCommand):
    help = "Import the example RAMP kits and open one event for each (idempotent)."

    def handle(self, *args, **options):
        for kit in sorted(p for p in EXAMPLES_DIR.iterdir() if (p / "problem.py").exists()):
            if not Problem.objects.filter(name=kit.name).exists():
                services.problem_import_ramp_kit(path=kit, name=kit.name)
            problem = Problem.objects.get(name=kit.name)
            _, created = Event.objects.get_or_create(
                name=kit.name,
                defaults={"title": problem.title, "problem_name": problem.name,
                          "description": DESCRIPTIONS.get(kit.name, "")},
            )
            self.stdout.write(f"{'created' if created else 'kept'} event {kit.name!r}")
