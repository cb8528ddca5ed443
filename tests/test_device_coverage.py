"""Issue #14, item 5: the Wazuh test products measured by ``benchmarks/devices.py``.

Over every ``.ini`` file of ``../shared/data/wazuh-tests``: every line is stored; an address of
(nearly) every IPv4-bearing line lands in a role field, for the whole ingest and for the
generic extraction alone; the hand-labelled roles (``tests/data/device_roles.yml``) are right.
The thresholds are the figures reached when this was written, minus a line or two of slack,
so they cannot quietly regress. Print the table with ``python benchmarks/devices.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import shared

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def devices() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_devices", ROOT / "benchmarks" / "devices.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured(devices: ModuleType):
    data = shared("wazuh-tests").parent
    rows = devices.measure(data)
    text, total = devices.table(rows)
    print(text)
    return rows, total


def test_every_line_is_stored_and_none_failed(measured) -> None:
    rows, total = measured
    assert total.lines >= 1850 and total.stored == total.lines
    assert total.failed == 0
    assert total.parsed + total.partial == total.lines


def test_addresses_land_in_role_fields(measured) -> None:
    _, total = measured
    assert total.v4 >= 700
    assert total.full_roles / total.v4 >= 0.98, f"whole ingest: {total.full_roles}/{total.v4}"
    assert total.generic_roles / total.v4 >= 0.99, f"generic alone: {total.generic_roles}/{total.v4}"
    assert total.decoded >= 9  # the YAML decoders take part (Check Point, Exim, Dovecot lines)


def test_hand_labelled_roles_are_right(measured) -> None:
    _, total = measured
    assert total.labelled >= 140
    assert total.full_right / total.labelled >= 0.95, "\n".join(total.wrong)
    assert total.generic_right / total.labelled >= 0.95, "generic alone"


def test_the_labels_point_at_lines_with_addresses(devices: ModuleType) -> None:
    folder = shared("wazuh-tests")
    labels = devices.load_labels()
    per_product: dict[str, int] = {}
    for key in labels:
        product, _, index = key.rpartition(":")
        lines = devices.ini_lines(folder / f"{product}.ini")
        assert int(index) < len(lines) and devices.IPV4.search(lines[int(index)]), key
        per_product[product] = per_product.get(product, 0) + 1
    products_with_v4 = {p.stem for p in folder.glob("*.ini") if any(devices.IPV4.search(x) for x in devices.ini_lines(p))}
    unlabelled = products_with_v4 - set(per_product)
    assert unlabelled <= {"exchange"}, unlabelled  # exchange: see the note in the labels file
    assert sum(1 for n in per_product.values() if n >= 3) >= 35
