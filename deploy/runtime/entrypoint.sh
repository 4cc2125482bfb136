#!/bin/sh
# Run the harness on /work, its output and errors going to capped files in
# the only writable directory (the container's own log stays empty).
exec python -m workers.harness /work >/work/output/stdout.log 2>/work/output/stderr.log
