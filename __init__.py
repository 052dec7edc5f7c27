"""The repository's root, not a package. Python imports it as ``hypersiren`` only from the folder that holds the
clone when the clone is named like the package: the working directory comes first on the import path, so the
clone shadows the installed package, and every import from it failed with "cannot import name ... (unknown
location)". Imported so, it says what happened and serves the package inside the clone instead; under any other
name (pytest imports a rootdir's ``__init__.py`` as the folder's name) it does nothing.
"""

import warnings
from pathlib import Path

if __name__ == "hypersiren":
    _PACKAGE = Path(__file__).resolve().parent / "hypersiren"
    warnings.warn(
        f"'import hypersiren' found the clone {Path(__file__).parent} in the working directory, which shadows the "
        f"installed package: using the package inside it, {_PACKAGE}. Run from another folder to use the installed "
        "one.",
        stacklevel=2,
    )
    __path__ = [str(_PACKAGE)]  # the package's search path: its submodules are the inner package's
    exec(compile((_PACKAGE / "__init__.py").read_text(), _PACKAGE / "__init__.py", "exec"))
