"""flake8 plugin `LML`: the same engine as `lintml check`, fed with flake8's lines."""

from __future__ import annotations

from pathlib import Path

from lintml import __version__


class Plugin:
    name = "lintml"
    version = __version__

    # flake8 passes these by parameter name; `lines` means stdin works and the file is
    # never read twice. `tree` is not needed: lintml parses with LibCST.
    def __init__(self, tree, lines, filename: str) -> None:
        self.lines = lines
        self.filename = filename

    def run(self):
        from lintml import config as config_module
        from lintml.engine import lint_source
        from lintml.files import InputError
        from lintml.registry import SYNTAX_ERROR, UNUSED_SUPPRESSION

        source = "".join(self.lines)
        path = Path(self.filename) if self.filename not in ("-", "stdin") else Path.cwd()
        try:
            config = config_module.discover(path)
        except config_module.ConfigError:
            config = config_module.Config()
        # flake8 applies `# noqa` and its own selection; unused-suppression is lintml's own
        enabled = config.enabled_codes_for(path) - {UNUSED_SUPPRESSION}
        from lintml.project.facts import checking

        on_disk = path if self.filename not in ("-", "stdin") and path.is_file() else None
        try:
            with checking(on_disk, config):  # the file's project supplies facts, as for `lintml check`
                findings = lint_source(source, self.filename, enabled).findings
        except InputError as error:  # too deeply nested to check: one line, not a traceback
            reason = str(error).split(": cannot check: ", 1)[-1]
            yield 1, 0, f"{SYNTAX_ERROR} Cannot check this file: {reason}", type(self)
            return
        for finding in findings:
            # flake8 adds 1 to the column a plugin returns
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)
