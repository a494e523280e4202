"""`broker init DIR`: everything a new site needs to start, in one folder.

A site should not have to copy files out of a source checkout: the installed broker
carries the example configuration and the profiles, and writes a commented
configuration, a site profile to adapt (layered over a shipped one, so upgrades of the
shipped profile still reach the site) and a migrated database. Paths in the written
configuration are relative to it (see `broker.config.anchored`), so the folder can be
moved or served from any working directory.
"""

from __future__ import annotations

from pathlib import Path

from broker.resources import resource_dir
from broker.store.migrate import upgrade

CONFIG_NAME = "broker.yaml"
SITE_PROFILE = "profiles/site.yaml"
DATABASE = "var/broker.db"

_PROFILE_TEXT = """\
# This site's mapping profile: the shipped profile named by `extends`, with this
# site's changes on top (see the shipped profiles for every key).
# Japanese sites: extends: jahis
name: site
extends: {base}
"""


class SiteExists(Exception):
    """The folder already holds a configuration: init never overwrites a site."""


def init_site(directory: Path, base_profile: str = "ihe-swf") -> list[Path]:
    """Write the configuration, the site profile and the database; return what was made."""
    config = directory / CONFIG_NAME
    if config.exists():
        raise SiteExists(f"{config} exists; nothing written")
    profile, database = directory / SITE_PROFILE, directory / DATABASE
    for folder in (profile.parent, database.parent):
        folder.mkdir(parents=True, exist_ok=True)
    profile.write_text(_PROFILE_TEXT.format(base=base_profile), encoding="utf-8")
    config.write_text(_site_config(), encoding="utf-8")
    upgrade(f"sqlite:///{database.resolve()}", create=True)  # init is the operator asking for one
    return [config, profile, database]


def _site_config() -> str:
    """The example configuration, pointed at the site profile beside it."""
    text = (resource_dir("config.example.yaml")).read_text(encoding="utf-8")
    return text.replace("\nprofile: ihe-swf\n", f"\nprofile: {SITE_PROFILE}\n", 1)
