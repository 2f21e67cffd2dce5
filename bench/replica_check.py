"""After two load drivers ran against two replicas: no lost or duplicated writes.

Each driver's JSON report names its run; every user a run created and did not
delete must be listed exactly once, the deleted ones not at all, and the
tenant's total must be exactly what the two runs left. Standard library only.
Usage: replica_check.py SCIM_BASE TOKEN REPORT_A REPORT_B
"""
import json
import sys
import urllib.parse
import urllib.request


def get(base, token, path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def main():
    base, token, *reports = sys.argv[1:]
    runs = [json.load(open(p)) for p in reports]
    # Each run: create users+warmup, delete users/4 + warmup (see crud.rs).
    expected = 0
    for r in runs:
        users = r["config"]["users"]
        warm = r["config"]["warmup"]
        deleted = users // 4 + warm if "delete" in r["config"]["workloads"] else 0
        expected += users + warm - deleted
    ids, names, cursor, pages = [], [], "", 0
    while cursor is not None and pages < 100000:
        v = get(base, token, "/Users?count=1000&attributes=userName&cursor=" + urllib.parse.quote(cursor))
        ids += [u["id"] for u in v.get("Resources", [])]
        names += [u["userName"].lower() for u in v.get("Resources", [])]
        cursor = v.get("nextCursor")
        pages += 1
    result = {
        "expected_users": expected,
        "listed_users": len(ids),
        "distinct_ids": len(set(ids)),
        "distinct_userNames": len(set(names)),
        "driver_errors": sum(s["errors"] for r in runs for s in r["results"]),
        "verification_failures": sum(v["failed"] for r in runs for v in r["verifications"]),
    }
    result["ok"] = (
        result["listed_users"] == expected
        and result["distinct_ids"] == expected
        and result["distinct_userNames"] == expected
        and result["driver_errors"] == 0
        and result["verification_failures"] == 0
    )
    print(json.dumps(result, indent=1))
    sys.exit(0 if result["ok"] else 1)


main()
