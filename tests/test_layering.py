"""The package's imports follow its layer order and form no circle.

Every module of ``object_detection_note`` is parsed with ``ast``; every
import in it (top-level or inside a function) that names a module of the
package is an arrow ``importer -> imported``. The layer order is
``object_detection_note.core.layers.LAYERS``; this file only checks it:

  * every module belongs to a package that has a floor;
  * an arrow leaves its package only downwards (to a strictly lower floor);
  * no arrows form a circle between modules.

Failures name the importing file, the line and the imported module.
"""
import ast
import os

import pytest

from object_detection_note.core import layers

_PACKAGE = 'object_detection_note'
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_modules(root, package):
  """{dotted module name: file path} of every .py file under root/package."""
  modules = {}
  for directory, _, files in os.walk(os.path.join(root, package)):
    for name in files:
      if not name.endswith('.py'):
        continue
      path = os.path.join(directory, name)
      dotted = os.path.relpath(path, root)[:-len('.py')].replace(os.sep, '.')
      if dotted.endswith('.__init__'):
        dotted = dotted[:-len('.__init__')]
      modules[dotted] = path
  return modules


def _resolve(name, modules):
  """The longest prefix of ``name`` that is a module, or None."""
  while name and name not in modules:
    name = name.rpartition('.')[0]
  return name or None


def import_arrows(modules, package):
  """[(importer, imported, line)] for every import of a package module."""
  arrows = []
  for importer, path in sorted(modules.items()):
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    is_package = os.path.basename(path) == '__init__.py'
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:  # relative: from the importer's own package upwards
          anchor = importer if is_package else importer.rpartition('.')[0]
          for _ in range(node.level - 1):
            anchor = anchor.rpartition('.')[0]
          base = anchor + ('.' + base if base else '')
        names = [base + '.' + alias.name for alias in node.names]
      else:
        continue
      for name in names:
        if name != package and not name.startswith(package + '.'):
          continue
        imported = _resolve(name, modules)
        if imported and imported != importer:
          arrows.append((importer, imported, node.lineno))
  return arrows


def unit_of(module, package, layer_order):
  """(floor index, package name) of a module, or None if it has no floor."""
  relative = module[len(package) + 1:] if module != package else ''
  best = None
  for index, floor in enumerate(layer_order):
    for unit in floor:
      if relative == unit or relative.startswith(unit + '.'):
        if best is None or len(unit) > len(best[1]):
          best = (index, unit)
  return best


def _circles(arrows):
  """Strongly connected groups of more than one module (Tarjan)."""
  graph = {}
  for importer, imported, _ in arrows:
    graph.setdefault(importer, set()).add(imported)
    graph.setdefault(imported, set())
  index, low, stack, on_stack, groups = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for other in sorted(graph[node]):
      if other not in index:
        visit(other)
        low[node] = min(low[node], low[other])
      elif other in on_stack:
        low[node] = min(low[node], index[other])
    if low[node] == index[node]:
      group = set()
      while True:
        member = stack.pop()
        on_stack.discard(member)
        group.add(member)
        if member == node:
          break
      if len(group) > 1:
        groups.append(group)

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return groups


def layering_problems(root, package, layer_order):
  """Every broken rule, one line each: ``file:line: ...``."""
  modules = package_modules(root, package)
  arrows = import_arrows(modules, package)
  importers = {importer for importer, _, _ in arrows}
  problems = []
  for module, path in sorted(modules.items()):
    if module == package:
      continue
    # A package __init__ that imports nothing (e.g. ``data``, whose
    # sub-packages have floors) needs no floor of its own.
    if unit_of(module, package, layer_order) is None and (
        module in importers or not path.endswith('__init__.py')):
      problems.append('%s: module %s has no floor in LAYERS' %
                      (os.path.relpath(path, root), module))
  for importer, imported, line in arrows:
    where = '%s:%d' % (os.path.relpath(modules[importer], root), line)
    source = unit_of(importer, package, layer_order)
    target = unit_of(imported, package, layer_order)
    if source is None:
      continue  # reported above
    if target is None:
      problems.append('%s: imports %s, which has no floor in LAYERS' %
                      (where, imported))
    elif target[1] != source[1] and target[0] >= source[0]:
      problems.append(
          '%s: imports %s (%s, floor %d) from %s (floor %d): not a lower '
          'floor' % (where, imported, target[1], target[0], source[1],
                     source[0]))
  for group in _circles(arrows):
    for importer, imported, line in arrows:
      if importer in group and imported in group:
        problems.append('%s:%d: imports %s, part of the import circle %s' %
                        (os.path.relpath(modules[importer], root), line,
                         imported, ' <-> '.join(sorted(group))))
  return problems


def test_package_imports_only_downwards_and_in_no_circle():
  problems = layering_problems(_ROOT, _PACKAGE, layers.LAYERS)
  assert not problems, 'layering broken:\n' + '\n'.join(problems)


def test_every_floor_names_an_existing_package_once():
  names = [unit for floor in layers.LAYERS for unit in floor]
  assert len(names) == len(set(names))
  base = os.path.join(_ROOT, _PACKAGE)
  for unit in names:
    path = os.path.join(base, *unit.split('.'))
    assert os.path.isdir(path) or os.path.isfile(path + '.py'), unit


def _write(root, relative, text=''):
  path = os.path.join(root, relative)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


_TOY_LAYERS = (('low',), ('mid_a', 'mid_b'), ('high',))


@pytest.fixture
def toy(tmp_path):
  """A package ``toy``: high imports mid_a imports low, all downwards."""
  root = str(tmp_path)
  for name in ('', 'low/', 'mid_a/', 'mid_b/', 'high/'):
    _write(root, 'toy/%s__init__.py' % name)
  _write(root, 'toy/low/base.py', 'import os\n')
  _write(root, 'toy/mid_a/user.py', 'from toy.low import base\n')
  _write(root, 'toy/mid_b/other.py', 'import toy.low.base\n')
  _write(root, 'toy/high/top.py',
         'from toy.mid_a import user\nfrom toy.mid_b import other\n')
  return root


def test_a_downward_package_passes(toy):
  assert layering_problems(toy, 'toy', _TOY_LAYERS) == []


def test_an_upward_import_names_file_line_and_module(toy):
  _write(toy, 'toy/low/base.py', 'import os\nfrom toy.high import top\n')
  problems = layering_problems(toy, 'toy', _TOY_LAYERS)
  upward = [p for p in problems if 'not a lower floor' in p]
  assert upward == [os.path.join('toy', 'low', 'base.py') +
                    ':2: imports toy.high.top (high, floor 2) from low '
                    '(floor 0): not a lower floor']


def test_a_function_local_upward_import_is_found(toy):
  _write(toy, 'toy/mid_a/user.py',
         'from toy.low import base\n\ndef f():\n'
         '  from toy.high import top\n  return top\n')
  problems = layering_problems(toy, 'toy', _TOY_LAYERS)
  assert any(p.startswith(os.path.join('toy', 'mid_a', 'user.py') + ':4: '
                          'imports toy.high.top') for p in problems), problems


def test_a_sibling_on_the_same_floor_is_not_below(toy):
  _write(toy, 'toy/mid_b/other.py', 'from toy.mid_a import user\n')
  problems = layering_problems(toy, 'toy', _TOY_LAYERS)
  assert len(problems) == 1 and 'imports toy.mid_a.user (mid_a, floor 1)' in (
      problems[0]), problems


def test_a_circle_inside_one_package_is_found(toy):
  _write(toy, 'toy/low/a.py', 'from toy.low import b\n')
  _write(toy, 'toy/low/b.py', 'x = 1\n\ndef f():\n  from toy.low import a\n')
  problems = layering_problems(toy, 'toy', _TOY_LAYERS)
  assert sorted(problems) == sorted([
      os.path.join('toy', 'low', 'a.py') + ':1: imports toy.low.b, part of '
      'the import circle toy.low.a <-> toy.low.b',
      os.path.join('toy', 'low', 'b.py') + ':4: imports toy.low.a, part of '
      'the import circle toy.low.a <-> toy.low.b'])


def test_a_relative_import_is_resolved(toy):
  _write(toy, 'toy/low/rel.py', 'from ..high import top\n')
  problems = layering_problems(toy, 'toy', _TOY_LAYERS)
  assert any(p.startswith(os.path.join('toy', 'low', 'rel.py') + ':1: '
                          'imports toy.high.top') for p in problems), problems


def test_a_module_without_a_floor_is_reported(toy):
  _write(toy, 'toy/loose.py', 'from toy.low import base\n')
  problems = layering_problems(toy, 'toy', _TOY_LAYERS)
  assert problems == [os.path.join('toy', 'loose.py') +
                      ': module toy.loose has no floor in LAYERS']
