"""The ``stockroom`` command: serve, migrate, seed, create-user, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from api.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Name the setting, not a pydantic traceback.
        lines = []
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]) or "settings"
            env = f"STOCKROOM_{name.upper()}" if error["loc"] else "settings"
            lines.append(f"  {env}: {error['msg']}")
        sys.exit("invalid settings:\n" + "\n".join(lines))


def cmd_migrate(_: argparse.Namespace) -> None:
    from db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    print(f"migrated {settings.database_url.split('@')[-1]}")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = _settings()
    if settings.is_sqlite:
        from db.migrate import upgrade

        upgrade(settings.database_url)
    host, port = args.host, args.port
    if settings.jwt_secret and "STOCKROOM_JWT_SECRET" not in os.environ:
        # The dev secret generated above must be the one every worker uses.
        os.environ["STOCKROOM_JWT_SECRET"] = settings.jwt_secret
    print(f"Stockroom on http://{host}:{port}")
    if settings.graphiql_enabled:
        print(f"  GraphiQL:  http://{host}:{port}/graphql")
    print(f"  REST docs: http://{host}:{port}/docs")
    print("  Log in with the `login` mutation (demo: admin@example.com / admin),")
    print('  then set the header {"Authorization": "Bearer <accessToken>"}.')
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        workers=args.workers,
        reload=args.reload,
        access_log=args.access_log,
        proxy_headers=True,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        lifespan="on",
        # GraphQL frames are small: compressing each one cost more CPU per subscriber on
        # both ends than it saved on the wire (a subscription fan-out spent ~5% in deflate).
        ws_per_message_deflate=False,
    )


async def _seed(args: argparse.Namespace) -> None:
    from api.passwords import hash_password
    from db import seed
    from db.engine import create_engine, write_sessionmaker
    from db.session import unit_of_work

    settings = _settings()
    engine = create_engine(settings.database_url)
    try:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            if args.if_empty and not await seed.is_empty(session):
                print("database already has items: not seeding")
                return
            summary = await seed.seed(
                session,
                hash_password=hash_password,
                items=args.items,
                warehouses=args.warehouses,
                categories=args.categories,
                movements_per_level=args.movements_per_level,
                demo_users=args.demo,
            )
        print(
            f"seeded {summary.items} items, {summary.warehouses} warehouses, "
            f"{summary.categories} categories, {summary.movements} movements"
        )
        if args.demo:
            print("demo logins: " + ", ".join(f"{e} / {p}" for e, p, _ in seed.DEMO_USERS))
    finally:
        await engine.dispose()


def cmd_seed(args: argparse.Namespace) -> None:
    asyncio.run(_seed(args))


async def _create_user(email: str, role: str, password: str) -> None:
    from api.passwords import hash_password
    from db import users
    from db.engine import create_engine, write_sessionmaker
    from db.errors import ServiceError
    from db.models import Role
    from db.session import unit_of_work

    engine = create_engine(_settings().database_url)
    try:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            user = await users.create_user(
                session, email=email, password_hash=hash_password(password), role=Role(role)
            )
        print(f"created {user.email} ({user.role.value})")
    except ServiceError as error:
        sys.exit(f"error: {error.message}")
    finally:
        await engine.dispose()


def cmd_create_user(args: argparse.Namespace) -> None:
    if not args.password_stdin:
        sys.exit("error: pass --password-stdin and the password on standard input")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        sys.exit("error: the password must be at least 8 characters")
    asyncio.run(_create_user(args.email, args.role.upper(), password))


async def _gc_uploads(grace_seconds: int) -> None:
    from datetime import timedelta

    from api.uploads.storage import LocalStorage
    from db import uploads
    from db.engine import create_engine, write_sessionmaker
    from db.models import utcnow
    from db.session import unit_of_work

    settings = _settings()
    storage = LocalStorage(settings.upload_dir)
    engine = create_engine(settings.database_url)
    try:
        async with unit_of_work(write_sessionmaker(engine)) as session:
            cutoff = utcnow() - timedelta(seconds=grace_seconds)
            stale = await uploads.unreferenced_images(session, cutoff)
            await uploads.delete_images(session, [image.id for image in stale])
        # Rows first, files after the commit: a crash leaves a stray file, never a dead link.
        for image in stale:
            await storage.delete(image.sha256)
        print(f"deleted {len(stale)} unreferenced uploads")
    finally:
        await engine.dispose()


def cmd_gc_uploads(args: argparse.Namespace) -> None:
    grace = (
        args.grace_seconds if args.grace_seconds is not None else _settings().upload_grace_seconds
    )
    asyncio.run(_gc_uploads(grace))


def cmd_export_schema(_: argparse.Namespace) -> None:
    from schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stockroom", description="Stockroom inventory API")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP/WebSocket server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true")
    serve.add_argument("--access-log", action="store_true", help="uvicorn's access log")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed", help="insert demo or generated data")
    seed.add_argument("--demo", action="store_true", help="also create the demo users")
    seed.add_argument("--items", type=int, default=200)
    seed.add_argument("--warehouses", type=int, help="at least the 3 named demo warehouses")
    seed.add_argument("--categories", type=int, help="at least the demo category tree")
    seed.add_argument("--movements-per-level", type=int, default=2, help="ledger depth")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when items exist")
    seed.set_defaults(func=cmd_seed)

    create = sub.add_parser("create-user", help="create a user")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--role",
        required=True,
        choices=["viewer", "clerk", "manager", "admin", "VIEWER", "CLERK", "MANAGER", "ADMIN"],
    )
    create.add_argument("--password-stdin", action="store_true")
    create.set_defaults(func=cmd_create_user)

    gc = sub.add_parser("gc-uploads", help="delete uploads no item uses, after a grace period")
    gc.add_argument("--grace-seconds", type=int, default=None)
    gc.set_defaults(func=cmd_gc_uploads)

    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(
        func=cmd_export_schema
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
