"""Shell-out helpers shared by the image build scripts (deploy/*/build.py)."""
import subprocess


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``, echoing it first; a failure stops the build."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0
