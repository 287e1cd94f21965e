"""What identity costs per request, over real HTTP (gunicorn, one worker, loopback),
against the same request to the same server without credentials checked: GET
of one entity with HTTP basic (scrypt hash, verified once then remembered),
with an OIDC bearer token (RS256), with both rate limits counting, and a
create under a quota (the tenant's usage summed on each create).

    .venv/bin/python benchmarks/bench_auth.py [--repeat 300]

Prints a Markdown table and writes it to benchmarks/results/bench_auth.md."""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from pathlib import Path

import jwt
import requests
from bench_http import KIND, report, start, stop, timed
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from werkzeug.security import generate_password_hash

from occi_server.kinds.tenancy import QUOTAS

ISSUER, AUDIENCE = "https://issuer.bench", "occi-bench"


def median_ms(url: str, headers: dict[str, str], repeat: int, method: str = "GET",
              body: str | None = None) -> float:
    session = requests.Session()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = session.request(method, url, headers=headers, data=body, timeout=60)
        response.raise_for_status()
        samples.append(time.perf_counter() - began)
    samples.sort()
    return samples[len(samples) // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rows = []
    with tempfile.TemporaryDirectory() as data:
        jwks = Path(data) / "jwks.json"
        jwks.write_text(json.dumps({"keys": [
            {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1"}]}))
        now = int(time.time())
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now,
                            "exp": now + 3600, "groups": ["bench-group"]}, key,
                           algorithm="RS256", headers={"kid": "k1"})
        users = {"bench": {"password_hash": generate_password_hash("bench-pw"),
                           "tenants": ["bench"]}}
        identity = {"auth": "basic,oidc", "users": json.dumps(users), "oidc_issuer": ISSUER,
                    "oidc_audience": AUDIENCE, "oidc_jwks": str(jwks),
                    "oidc_tenants": json.dumps({"bench-group": "bench"})}
        basic = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-pw").decode()}
        bearer = {"Authorization": f"Bearer {token}"}
        create_body = f"{KIND}\n"
        open_server, open_url = start(data + "/open")
        try:
            entity = requests.post(open_url + "/compute/", data=create_body, timeout=60,
                                   headers={"Content-Type": "text/plain"}).headers["Location"]
            baseline = timed(entity, "text/plain", args.repeat)
            create_base = median_ms(open_url + "/compute/", {"Content-Type": "text/plain"},
                                    args.repeat // 3, "POST", create_body)
        finally:
            stop(open_server)
        cases = [("basic", identity, basic), ("bearer (RS256)", identity, bearer),
                 ("basic, rate limits counting", {
                     **identity, "rate_limit_anonymous": "1000000/minute",
                     "rate_limit_authenticated": "1000000/minute"}, basic)]
        for name, settings, headers in cases:
            server, url = start(data + "/" + name.split()[0] + str(len(rows)), **settings)
            try:
                entity = requests.post(url + "/compute/", data=create_body, timeout=60, headers={
                    "Content-Type": "text/plain", **headers}).headers["Location"]
                ours = median_ms(entity, {"Accept": "text/plain", **headers}, args.repeat)
                rows.append((f"GET one entity, {name}", f"{ours:.2f} ms",
                             f"{baseline:.2f} ms", f"{ours / baseline:.2f}"))
            finally:
                stop(server)
        # One limit counted (the others off, as the built-in ones would refuse 200 computes).
        quota = {**identity, "quotas": json.dumps(
            {"default": {**dict.fromkeys(QUOTAS, -1), "instances": 100000}})}
        server, url = start(data + "/quota", **quota)
        try:
            for _ in range(200):  # the tenant owns 200 computes; each create sums them
                requests.post(url + "/compute/", data=create_body, timeout=60,
                              headers={"Content-Type": "text/plain", **basic})
            ours = median_ms(url + "/compute/", {"Content-Type": "text/plain", **basic},
                             args.repeat // 3, "POST", create_body)
            rows.append(("POST /compute/ under a quota (tenant owns 200+), basic",
                         f"{ours:.2f} ms", f"{create_base:.2f} ms (no auth, no quota)",
                         f"{ours / create_base:.2f}"))
        finally:
            stop(server)
    table = ["| case | with identity | same request, auth none | ratio |", "|---|---|---|---|"]
    table += [f"| {name} | {ours} | {base} | {ratio} |" for name, ours, base, ratio in rows]
    report("bench_auth.md", table)


if __name__ == "__main__":
    main()
