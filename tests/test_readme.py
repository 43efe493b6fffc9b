"""The README's Python example runs as written."""

import pathlib
import re

from readme_sections import python_blocks
from readme_sections import section

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_readme_python_example_runs():
    readme = README.read_text()
    # The keras-hub examples need the extra; tests/hub/test_readme_hub.py
    # runs them.
    readme = readme.replace(section(readme, "## keras-hub") or "", "")
    blocks = python_blocks(readme)
    # Examples that download weights say so on their first line; the tests
    # never use the network.
    offline = [block for block in blocks if not block.startswith("# network:")]
    assert len(offline) == len(blocks) - 1
    namespace = {}
    for block in offline:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    assert model.output.shape == (None, 14, 14, 256)
    assert len([w for w in model.weights if "table" in w.path]) == 1
    assert len(namespace["top5"][0]) == 5
    assert namespace["features"].output_shape == (None, 2048)
    # Our Imagenette checkpoint names the three sample photographs.
    assert namespace["labels"] == ["church", "parachute", "tench"]


def test_readme_quick_start_is_the_ci_command():
    readme = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)[0].splitlines()
    assert len(commands) == 2
    assert commands[1] in ci
