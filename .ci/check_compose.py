"""Validates docker-compose.yml, since no Docker engine runs in CI.

Checks the services, how images are built, the contract's ports, the settings each
server needs, health checks, and that the keys live on a volume.
"""
import sys
import tomllib
from pathlib import Path

import yaml

root = Path(__file__).resolve().parent.parent
compose = yaml.safe_load((root / "docker-compose.yml").read_text())
errors = []


def check(condition, message):
    if not condition:
        errors.append(message)


services = compose.get("services", {})
check(set(services) >= {"postgres", "auth-server", "posts-server"}, f"services: {sorted(services)}")
check(services.get("postgres", {}).get("image", "").startswith("postgres"), "postgres image")

auth = services.get("auth-server", {})
posts = services.get("posts-server", {})
check(auth.get("build") is not None, "auth-server is built from the Dockerfile")
check(auth.get("image") == posts.get("image"), "both servers run the one built image")
check("8000:8000" in auth.get("ports", []), "auth-server publishes 8000")
check("8001:8001" in posts.get("ports", []), "posts-server publishes 8001")
check(auth.get("command") == ["auth-server"], "auth-server command")
check(posts.get("command") == ["posts-server"], "posts-server command")

auth_env = auth.get("environment", {})
posts_env = posts.get("environment", {})
for name in ["AUTH_BIND", "AUTH_DATABASE_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_KEYS_DIR"]:
    check(name in auth_env, f"auth-server sets {name}")
for name in ["POSTS_BIND", "POSTS_DATABASE_URL", "POSTS_ISSUER", "POSTS_AUDIENCE", "POSTS_JWKS_URL"]:
    check(name in posts_env, f"posts-server sets {name}")
check(str(auth_env.get("AUTH_DATABASE_URL", "")).startswith("postgres://"), "auth-server uses PostgreSQL")
check(str(posts_env.get("POSTS_DATABASE_URL", "")).startswith("postgres://"), "posts-server uses PostgreSQL")
check(auth_env.get("AUTH_ISSUER") == posts_env.get("POSTS_ISSUER"), "issuer settings agree")
check(auth_env.get("AUTH_AUDIENCE") == posts_env.get("POSTS_AUDIENCE"), "audience settings agree")
check(str(auth_env.get("AUTH_BIND", "")).startswith("0.0.0.0:"), "auth-server listens on all interfaces")
check(str(posts_env.get("POSTS_BIND", "")).startswith("0.0.0.0:"), "posts-server listens on all interfaces")

keys_dir = auth_env.get("AUTH_KEYS_DIR")
volumes = auth.get("volumes", [])
check(any(v.split(":")[1] == keys_dir for v in volumes), "the keys directory is a volume")
check("keys" in (compose.get("volumes") or {}), "a named keys volume")

for name, service in services.items():
    check("healthcheck" in service, f"{name} has a health check")
check(posts.get("depends_on", {}).get("auth-server", {}).get("condition") == "service_healthy",
      "posts-server waits for a healthy auth-server")
check(auth.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
      "auth-server waits for a healthy postgres")

dockerfile = (root / "Dockerfile").read_text()
check(dockerfile.count("FROM ") >= 2, "the Dockerfile is multi-stage")
check("USER " in dockerfile, "the image does not run as root")
# The build stage copies what the workspace builds from: every member (a member added
# without its COPY breaks the image, and nothing else here would notice) and .cargo (the
# SQLite build flags).
members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
for source in [*members, ".cargo"]:
    check(f"COPY {source} {source}" in dockerfile, f"the Dockerfile copies {source}")

if errors:
    print("docker-compose.yml check failed:")
    for e in errors:
        print(f"  - {e}")
    sys.exit(1)
print("docker-compose.yml: ok")
