"""Health check of an HTTP process in the Datarun image, which has no curl.

    python deploy/web/healthcheck.py http://127.0.0.1:8000/api/v1/health/

Exits 0 when the URL answers 2xx within the timeout, 1 otherwise (with the
reason, which ``docker inspect`` shows in the container's health log).
"""
import sys
import urllib.error
import urllib.request


def main(url: str, timeout_s: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
