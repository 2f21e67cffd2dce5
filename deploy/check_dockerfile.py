"""The Dockerfile's shape, read with dockerfile-parse (the parser Red Hat's
OSBS uses): what `docker build` would produce without pulling an image.

Checks: multi-stage; the runtime stage copies the binary from the build stage,
runs as a numeric non-root user, keeps its data in a VOLUME (owned by that
user), has a HEALTHCHECK that runs the binary's own probe on /healthz, and
listens on all interfaces. Exits 1 naming each failed check.
"""

import sys

from dockerfile_parse import DockerfileParser


def main(path: str) -> int:
    with open(path, "rb") as f:
        p = DockerfileParser(fileobj=f)
        lines = p.structure
        envs = p.envs
    froms = [i for i, l in enumerate(lines) if l["instruction"] == "FROM"]
    runtime = lines[froms[-1]:] if froms else []

    def last(instruction):
        found = [l["value"] for l in runtime if l["instruction"] == instruction]
        return found[-1] if found else None

    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    check(len(froms) >= 2, "multi-stage: a build stage and a runtime stage")
    stages = [lines[i]["value"].split() for i in froms]
    check(all(len(s) == 3 and s[1].upper() == "AS" for s in stages), "every stage is named (FROM … AS name)")
    build = stages[0][2] if stages and len(stages[0]) == 3 else "?"
    check(
        any(l["instruction"] == "COPY" and f"--from={build}" in l["value"] for l in runtime),
        f"the runtime stage copies the binary from '{build}'",
    )
    check(not any(l["instruction"] == "RUN" and "cargo" in l["value"] for l in runtime), "no toolchain in the runtime stage")
    user = last("USER")
    uid = (user or "").split(":")[0]
    check(uid.isdigit() and int(uid) != 0, f"runs as a numeric non-root USER (got {user!r})")
    volume = last("VOLUME")
    check(volume is not None and "/var/lib/custodian/data" in volume, "data in a VOLUME at /var/lib/custodian/data")
    owned = f"-o {uid} -g" if uid else "?"
    check(
        any(l["instruction"] == "RUN" and owned in l["value"] and "/var/lib/custodian/data" in l["value"] for l in runtime),
        "the volume's directory is created owned by the runtime user",
    )
    health = last("HEALTHCHECK") or ""
    check("CMD" in health and '"custodian", "healthcheck"' in health, "HEALTHCHECK runs `custodian healthcheck`")
    env = envs
    check(env.get("CUSTODIAN_BIND", "").startswith("0.0.0.0:"), "CUSTODIAN_BIND listens on all interfaces")
    check(
        env.get("CUSTODIAN_DATABASE_URL", "").startswith("sqlite:///var/lib/custodian/data/"),
        "the SQLite database (and tombstone.key beside it) is in the volume",
    )
    check(last("ENTRYPOINT") is not None and "custodian" in last("ENTRYPOINT"), "ENTRYPOINT is the binary")
    for f in failures:
        print(f"Dockerfile: {f}: not satisfied", file=sys.stderr)
    if not failures:
        print(f"Dockerfile: {len(froms)} stages, USER {user}, VOLUME {volume}, HEALTHCHECK {health}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "Dockerfile"))
