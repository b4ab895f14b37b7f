"""The layout holds: imports run one way, nothing imports in a circle, modules stay small, each record has
one write path, and the product stands alone (docs/architecture.md, "Import direction").

Read from the source as text and syntax trees (nothing is imported): import statements at any depth,
model relations named by string (`ForeignKey("security.Broker")`), URLconf `include("…")` strings, and
migration dependencies all count as arrows.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("equity_connect", "security", "leads", "pipeline")  # bottom to top
MAX_LINES = 400

# Inside pipeline: models ← recorders ← workers ← entry points.
# A package's own models module (sms, experiments) is imported by pipeline/models.py: it is a model module too.
PIPELINE_MODELS = {
    "pipeline.models",
    "pipeline.fields",
    "pipeline.querysets",
    "pipeline.sms.models",
    "pipeline.experiments.models",
}
PIPELINE_RECORDERS = {"pipeline.dlq", "pipeline.jobs"}
PIPELINE_ENTRY_POINTS = re.compile(
    r"^pipeline\.(admin|apps|tasks|schedules|management\..*|(\w+\.)?(admin|views|urls|urls_\w+))$"
)

# The named exceptions, each with its reason: (from module, to app).
EXCEPTIONS = {
    ("equity_connect.urls", "leads"): "the root URLconf mounts each app's URL module",
    ("equity_connect.urls", "pipeline"): "the root URLconf mounts each app's URL module",
    ("security.migrations.0001_initial", "leads"): (
        "history: the partner key's broker was declared when Broker lived in leads (migrations are never rewritten)"
    ),
}


def product_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = product_modules()


def _resolve(module: str, node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def arrows(module: str, path: Path) -> list[tuple[str, str]]:
    """(target module or app, how) for every reference `module` makes to first-party code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path)
            found.append((target, "import"))
            found += [
                (f"{target}.{alias.name}", "import") for alias in node.names if f"{target}.{alias.name}" in MODULES
            ]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0] if node.args else None
            text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
            if text and name in ("ForeignKey", "OneToOneField", "ManyToManyField") and "." in text:
                found.append((text.split(".")[0], "model relation"))
            elif text and name == "include":
                found.append((text, "include"))
        elif isinstance(node, ast.Assign) and ".migrations." in module:
            targets = [getattr(target, "id", "") for target in node.targets]
            if {"dependencies", "run_before"} & set(targets) and isinstance(node.value, ast.List):
                for element in node.value.elts:
                    if isinstance(element, ast.Tuple) and isinstance(element.elts[0], ast.Constant):
                        found.append((element.elts[0].value, "migration dependency"))
    return [(target, how) for target, how in found if target.split(".")[0] in APPS]


def app_of(name: str) -> str:
    return name.split(".")[0]


def pipeline_rank(module: str) -> int | None:
    """0 models, 1 recorders, 2 workers, 3 entry points; None outside pipeline (or for migrations)."""
    if not module.startswith("pipeline") or ".migrations" in module or module == "pipeline":
        return None
    if module in PIPELINE_MODELS:
        return 0
    if module in PIPELINE_RECORDERS:
        return 1
    if PIPELINE_ENTRY_POINTS.match(module):
        return 3
    return 2


def closest_module(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def test_imports_and_relations_run_down_the_layers():
    upward, used_exceptions = [], set()
    for module, path in MODULES.items():
        for target, how in arrows(module, path):
            source_app, target_app = app_of(module), app_of(target)
            if APPS.index(target_app) <= APPS.index(source_app):
                continue
            if (module, target_app) in EXCEPTIONS:
                used_exceptions.add((module, target_app))
                continue
            upward.append(f"{module} -> {target} ({how})")
    assert upward == [], "arrows that run up the layers:\n" + "\n".join(upward)
    assert used_exceptions == set(EXCEPTIONS), "a named exception no longer happens: remove it from EXCEPTIONS"
    assert len({module for module, _ in EXCEPTIONS}) <= 3


def test_inside_pipeline_models_recorders_workers_entry_points():
    upward = []
    for module, path in MODULES.items():
        rank = pipeline_rank(module)
        if rank is None:
            continue
        for target, how in arrows(module, path):
            target_module = closest_module(target)
            target_rank = pipeline_rank(target_module) if target_module else None
            if target_rank is not None and target_rank > rank:
                upward.append(f"{module} (rank {rank}) -> {target_module} (rank {target_rank}, {how})")
    assert upward == [], "\n".join(upward)


def test_no_import_circles():
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for target, how in arrows(module, path):
            if how != "import":
                continue
            target_module = closest_module(target)
            if target_module and target_module != module and not module.startswith(f"{target_module}."):
                graph[module].add(target_module)
    # Tarjan's strongly connected components: any of more than one module is a circle.
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for neighbour in graph[node]:
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_no_module_over_400_lines_outside_migrations_and_tests():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    too_long = []
    for name in tracked.stdout.split():
        if "/migrations/" in name or name.startswith("tests/"):
            continue
        lines = (ROOT / name).read_text().count("\n")
        if lines > MAX_LINES:
            too_long.append(f"{name}: {lines} lines")
    assert too_long == []


# Every write to these tables goes through its recorder (the text an INSERT or an ORM create would need).
WRITERS = {
    "pipeline_events": (
        "equity_connect/events.py",
        r"INSERT INTO pipeline_events|PipelineEvent\.objects\.(create|bulk_create|update)",
    ),
    "pipeline_dlq": (
        "pipeline/dlq.py",
        r"INSERT INTO pipeline_dlq|PipelineDLQ\.objects\.(create|bulk_create)"
        r"|\.status\s*=\s*DLQStatus\.(RESOLVED|DISCARDED)|update\([^)]*status\s*=\s*DLQStatus",
    ),
    "lead_access_records": (
        "leads/access.py",
        r"INSERT INTO lead_access_records|LeadAccessRecord\.objects\.(create|bulk_create|update)",
    ),
}


def test_events_dlq_rows_and_access_records_are_written_only_by_their_recorders():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    outside = []
    for name in tracked.stdout.split():
        if name.startswith(("tests/", "benchmarks/")) or "/migrations/" in name:
            continue
        text = (ROOT / name).read_text()
        for table, (owner, pattern) in WRITERS.items():
            if name != owner and re.search(pattern, text):
                outside.append(f"{name} writes {table}")
    assert outside == []


def test_the_product_does_not_cite_the_teams_private_design():
    pattern = "shared" + "/" + r"\|" + "DESIGN" + r" §\|DESIGN\.md"
    found = subprocess.run(
        ["git", "grep", "-n", pattern, "--", ".", ":!tests/test_seed_sql.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert found.stdout == ""
