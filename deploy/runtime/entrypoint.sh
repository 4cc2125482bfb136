#!/bin/sh
# Run the harness on /work, its output and errors going to capped files in
# the only writable directory (the container's own log stays empty). The
# worker kills the container at the wall-time limit; the timeout here only
# stops a container whose worker died before it could.
exec timeout -s KILL "${DATARUN_BACKSTOP_S:-3600}" \
    python -m workers.harness /work >/work/output/stdout.log 2>/work/output/stderr.log
