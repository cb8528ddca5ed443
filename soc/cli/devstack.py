"""``soc devstack ...``: real Kafka and OpenSearch for development and tests."""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    help="Real Kafka and OpenSearch for development and tests (Maven Central jars, no Docker).",
    no_args_is_help=True)


@app.command("up")
def devstack_up(kafka: bool = True, search: bool = True) -> None:
    """Fetch the jars (first time) and start Kafka and OpenSearch on free loopback ports."""
    from soc import devstack

    info = devstack.up(kafka=kafka, search=search)
    print(json.dumps({k: info.get(k) for k in ("kafka_bootstrap", "opensearch_url")}, indent=1))
    print("export SOC_TEST_KAFKA_BOOTSTRAP={kafka_bootstrap} SOC_TEST_OPENSEARCH_URL={opensearch_url}".format(**info))


@app.command("down")
def devstack_down() -> None:
    """Stop the servers `soc devstack up` started (SIGTERM, then SIGKILL)."""
    from soc import devstack

    print(json.dumps(devstack.down(), indent=1))


@app.command("status")
def devstack_status() -> None:
    """Show whether the dev servers run, their addresses and memory."""
    from soc import devstack

    print(json.dumps(devstack.status(), indent=1, default=str))


