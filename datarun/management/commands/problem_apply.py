import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datarun.errors import ApplicationError
from datarun.services.declarative import problem_apply


class Command(BaseCommand):
    help = ("Create or rebuild the declarative problem a spec (YAML or JSON: dataset version, "
            "target, task, score types, split, workflow, limits) describes; idempotent: the "
            "same spec on the same dataset version changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("spec", help="the spec file (YAML or JSON; - reads stdin)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, spec, json=False, **options):
        try:
            text = sys.stdin.read() if spec == "-" else Path(spec).read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {spec}: {exc.strerror}") from exc
        try:
            problem, created = problem_apply(spec=text)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        result = {
            "created": created, "problem": problem.name, "dataset": problem.spec["dataset"],
            "split_hash": problem.split.split_hash, "n_train": problem.n_train,
            "n_test": problem.n_test, "n_folds": problem.n_folds,
            "workflow_elements": problem.workflow_elements,
            "score_types": [s.name for s in problem.score_types.all()],
        }
        if json:
            self.stdout.write(_json(result))
            return
        self.stdout.write(f"{'created' if created else 'unchanged'}: problem {problem.name} "
                          f"on {result['dataset']}")
        self.stdout.write(f"  {problem.n_train} training rows, {problem.n_test} test rows, "
                          f"{problem.n_folds} folds (split {problem.split.split_hash[:12]})")
        self.stdout.write(f"  scores: {', '.join(result['score_types'])}; submissions provide "
                          f"{', '.join(f'{e}.py' for e in problem.workflow_elements)}")


def _json(data: dict) -> str:
    return json.dumps(data, indent=2)
