"""Which local names mean which library objects: the alias table.

`import torch as T`, `from torch import no_grad as ng` and `import torch.nn.functional as F`
make `T`, `ng` and `F` stand for `torch`, `torch.no_grad` and `torch.nn.functional`.
A name is only taken for a library object when an import binds it; a name that the same
scope also binds some other way (an assignment, a parameter, a def) is shadowed and means
nothing known. The one exception is the optional-import idiom `torch = None`.

The table is built by a walk over statements only (bindings happen in statements), so it
costs a small fraction of the parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from lintml.analysis.walk import child_nodes, concrete_types

_SUITES = concrete_types(cst.BaseSuite)
_STATEMENTS = concrete_types(cst.BaseCompoundStatement, cst.SimpleStatementLine)

SHADOWED = ""  # a binding that is not an import of anything we can name


@dataclass
class Scope:
    node: cst.CSTNode
    parent: Scope | None
    is_class: bool = False
    # name -> set of qualified names its bindings give ("" for a non-import binding)
    bindings: dict[str, set[str]] = field(default_factory=dict)

    def bind(self, name: str, qualified: str) -> None:
        self.bindings.setdefault(name, set()).add(qualified)


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is not cst.Name:
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def _module_name(node: cst.BaseExpression | None) -> str:
    if node is None:
        return ""
    name = dotted_name(node)
    return name or ""


class ImportTable:
    """Scopes and their bindings for one module; answers `qualified_name(expr, scope)`."""

    def __init__(self, module: cst.Module, package=None) -> None:
        # the package the file is in (`pkg.models` for pkg/models/unet.py): relative
        # imports mean names of the project there; None: they mean nothing known. A
        # function giving it is asked only if the file has a relative import.
        self._package = package
        self.module_scope = Scope(module, None)
        self.scopes: dict[int, Scope] = {id(module): self.module_scope}
        self._collect_block(module.body, self.module_scope)

    @property
    def package(self) -> str | None:
        if callable(self._package):
            self._package = self._package()
        return self._package

    # -- questions -------------------------------------------------------------------

    def scope_of(self, node: cst.CSTNode) -> Scope | None:
        """The scope a FunctionDef/ClassDef/Module opens (None for other nodes)."""
        return self.scopes.get(id(node))

    def resolve_name(self, name: str, scope: Scope) -> str | None:
        """The qualified name a bare name means in `scope`, or None if not an import."""
        current: Scope | None = scope
        first = True
        while current is not None:
            # class bodies are not visible from the functions nested in them
            if current.is_class and not first:
                current = current.parent
                continue
            first = False
            found = current.bindings.get(name)
            if found is not None:
                imports = found - {SHADOWED}
                if len(imports) == 1 and SHADOWED not in found:
                    return next(iter(imports))
                return None
            current = current.parent
        return None

    def qualified_name(self, node: cst.BaseExpression, scope: Scope) -> str | None:
        """`torch.no_grad` for `T.no_grad` when `import torch as T`; None when unknown."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        base = self.resolve_name(head, scope)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    # -- collection ------------------------------------------------------------------

    def _collect_block(self, body, scope: Scope) -> None:
        for statement in body:
            self._collect_statement(statement, scope)

    def _collect_statement(self, statement: cst.CSTNode, scope: Scope) -> None:
        if type(statement) is cst.SimpleStatementLine:
            for small in statement.body:
                self._collect_small(small, scope)
        elif type(statement) is cst.FunctionDef:
            scope.bind(statement.name.value, SHADOWED)
            inner = Scope(statement, scope)
            self.scopes[id(statement)] = inner
            self._bind_parameters(statement.params, inner)
            self._collect_suite(statement.body, inner)
        elif type(statement) is cst.ClassDef:
            scope.bind(statement.name.value, SHADOWED)
            inner = Scope(statement, scope, is_class=True)
            self.scopes[id(statement)] = inner
            self._collect_suite(statement.body, inner)
        else:
            self._collect_compound(statement, scope)

    def _collect_compound(self, statement: cst.CSTNode, scope: Scope) -> None:
        if type(statement) is cst.For:
            self._bind_target(statement.target, scope)
        elif type(statement) is cst.With:
            for item in statement.items:
                if item.asname is not None:
                    self._bind_target(item.asname.name, scope)
        elif type(statement) is cst.ExceptHandler or type(statement) is cst.ExceptStarHandler:
            if statement.name is not None:
                self._bind_target(statement.name.name, scope)
        for child in child_nodes(statement):
            if type(child) in _SUITES:
                self._collect_suite(child, scope)
            elif type(child) in _STATEMENTS:
                self._collect_statement(child, scope)
            elif isinstance(
                child,
                (cst.ExceptHandler, cst.ExceptStarHandler, cst.Else, cst.Finally, cst.If, cst.MatchCase),
            ):
                self._collect_compound(child, scope)

    def _collect_suite(self, suite: cst.BaseSuite, scope: Scope) -> None:
        if type(suite) is cst.IndentedBlock:
            self._collect_block(suite.body, scope)
        elif type(suite) is cst.SimpleStatementSuite:
            for small in suite.body:
                self._collect_small(small, scope)

    def _collect_small(self, small: cst.CSTNode, scope: Scope) -> None:
        if type(small) is cst.Import:
            for alias in small.names:
                full = _module_name(alias.name)
                if alias.asname is not None:
                    self._bind_target(alias.asname.name, scope, full)
                else:
                    # `import torch.nn` binds `torch`
                    scope.bind(full.split(".")[0], full.split(".")[0])
        elif type(small) is cst.ImportFrom:
            if small.relative or type(small.names) is cst.ImportStar:
                base = None
                if small.relative and self.package is not None:
                    from lintml.project.index import absolute_import

                    base = absolute_import(_module_name(small.module) or None, len(small.relative), self.package)
                if type(small.names) is not cst.ImportStar:
                    for alias in small.names:
                        local = alias.asname.name if alias.asname else alias.name
                        if base is not None:
                            self._bind_target(local, scope, f"{base}.{_module_name(alias.name)}")
                        else:
                            self._bind_target(local, scope)
                return
            base = _module_name(small.module)
            for alias in small.names:
                full = f"{base}.{_module_name(alias.name)}"
                local = alias.asname.name if alias.asname else alias.name
                self._bind_target(local, scope, full)
        elif type(small) is cst.Assign:
            optional_import = type(small.value) is cst.Name and small.value.value == "None"
            for target in small.targets:
                if optional_import and type(target.target) is cst.Name:
                    continue  # `torch = None` in an `except ImportError:` keeps the import's meaning
                self._bind_target(target.target, scope)
        elif type(small) in (cst.AnnAssign, cst.AugAssign):
            self._bind_target(small.target, scope)
        elif type(small) in (cst.Global, cst.Nonlocal):
            for item in small.names:
                scope.bind(item.name.value, SHADOWED)

    def _bind_parameters(self, params: cst.Parameters, scope: Scope) -> None:
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            scope.bind(param.name.value, SHADOWED)
        for star in (params.star_arg, params.star_kwarg):
            if type(star) is cst.Param:
                scope.bind(star.name.value, SHADOWED)

    def _bind_target(self, target: cst.CSTNode, scope: Scope, qualified: str = SHADOWED) -> None:
        if type(target) is cst.Name:
            scope.bind(target.value, qualified)
        elif type(target) in (cst.Tuple, cst.List):
            for element in target.elements:
                self._bind_target(element.value, scope)
        elif type(target) is cst.StarredElement:
            self._bind_target(target.value, scope)
