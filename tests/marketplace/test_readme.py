import re

from tests.processes import ROOT


def test_every_environment_variable_the_settings_read_is_in_the_readme():
    settings_source = (ROOT / "marketplace" / "settings.py").read_text()
    runall_source = (ROOT / "marketplace" / "management" / "commands" / "runall.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', settings_source))
    read |= set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', runall_source))
    readme = (ROOT / "README.md").read_text()

    missing = sorted(name for name in read if f"`{name}`" not in readme)

    assert len(read) > 30
    assert missing == []
