"""The methods as ``bench ls methods`` lists them, read from source without importing torch.

Listing must answer in well under a second, and importing an anonymizer's module imports torch
(about 2 s of CPU) and building one can load weights. So the listing is read from the files
themselves: each method config's ``anonymizer = dict(type=..., ...)``, and for each class
registered with ``@ANONYMIZERS.register_module()`` in the registry's locations (``baselines``,
``raprivacy``) its class attributes ``table_name``, ``learns`` and ``needs`` and the defaults of
its ``__init__``. A ``table_name`` may name constructor arguments (``'Downsample-{factor}x'``,
``'{name}'``): the config's values, else the defaults, fill them in, as the class does when
built. ``tests/test_catalog.py`` checks the listing against the built anonymizers.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

from benchmark.config import CONFIG_DIR, available_methods

ROOT = Path(__file__).resolve().parents[1]
LOCATIONS = ('baselines', 'raprivacy')  # benchmark.registry.ANONYMIZERS's locations
BASE_ATTRIBUTES = dict(table_name='', learns=False, needs=())  # benchmark.anonymizer.Anonymizer's


class Method(NamedTuple):
    name: str
    anonymizer: str
    table_name: str
    learns: bool
    needs: tuple[str, ...]


def _literal(node: ast.AST):
    """A literal, where ``dict(a=...)`` calls count as dicts."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict' \
            and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    return ast.literal_eval(node)


def config_anonymizer(path: Path) -> dict:
    """The ``anonymizer`` dict of a method config, its literal entries only."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == 'anonymizer'
                                                for t in node.targets):
            out = {}
            for kw in getattr(node.value, 'keywords', []):
                try:
                    out[kw.arg] = _literal(kw.value)
                except ValueError:  # an expression: not needed for the listing
                    pass
            return out
    raise ValueError(f'{path} has no `anonymizer = dict(type=...)`')


def _registered(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                and d.func.attr == 'register_module' and isinstance(d.func.value, ast.Name)
                and d.func.value.id == 'ANONYMIZERS' for d in node.decorator_list):
            yield node


def _class_facts(node: ast.ClassDef, base: dict) -> dict:
    facts = dict(base, defaults=dict(base['defaults']))
    for item in node.body:
        if isinstance(item, (ast.Assign, ast.AnnAssign)):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in BASE_ATTRIBUTES and item.value:
                    facts[target.id] = _literal(item.value)
        elif isinstance(item, ast.FunctionDef) and item.name == '__init__':
            args = item.args.args[1:] + item.args.kwonlyargs
            defaults = [None] * (len(item.args.args) - 1 - len(item.args.defaults)) \
                + list(item.args.defaults) + list(item.args.kw_defaults)
            for arg, default in zip(args, defaults):
                if default is not None:
                    try:
                        facts['defaults'][arg.arg] = _literal(default)
                    except ValueError:
                        pass
    return facts


def anonymizer_classes() -> dict[str, dict]:
    """Every registered anonymizer class in the registry's locations: its listed attributes."""
    classes = {}
    for package in LOCATIONS:
        for path in sorted((ROOT / package).glob('*.py')):
            for node in _registered(ast.parse(path.read_text())):
                bases = [b.id for b in node.bases if isinstance(b, ast.Name) and b.id in classes]
                base = classes[bases[0]] if bases else dict(BASE_ATTRIBUTES, defaults={})
                classes[node.name] = _class_facts(node, base)
    return classes


def methods() -> list[Method]:
    """Every method config with its anonymizer, Table 1 row, whether it learns and its needs."""
    classes = anonymizer_classes()
    out = []
    for name in available_methods():
        cfg = config_anonymizer(CONFIG_DIR / 'methods' / f'{name}.py')
        facts = classes.get(cfg.get('type'), dict(BASE_ATTRIBUTES, defaults={}))
        values = {**facts['defaults'], **cfg}
        try:
            table = facts['table_name'].format(**values)
        except (KeyError, IndexError):
            table = facts['table_name']
        out.append(Method(name, str(cfg.get('type')), table, bool(facts['learns']),
                          tuple(facts['needs'])))
    return out


def unused_anonymizers() -> list[str]:
    """Registered anonymizer classes no method config uses."""
    used = {m.anonymizer for m in methods()}
    return sorted(set(anonymizer_classes()) - used)
