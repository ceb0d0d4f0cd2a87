"""Settings of ``embedlab tables`` (config section ``tables``)."""

from dataclasses import dataclass

from embedlab.settings import setting


@dataclass(frozen=True)
class TablesSettings:
    """Which runs a page gathers, what it compares and how it is titled."""

    reference: str | None = setting(
        "config/reference/sts.yaml", "YAML of published rows, shown apart as reported"
    )
    experiments: list[str] = setting(
        [], "MLflow experiments to gather (default: the current one); rows named by source"
    )
    compare: list[dict] = setting(
        [], 'extra comparisons across batch sizes: {"a": "b3", "a_bs": 64, "b": ..., "b_bs": ...}'
    )
    title: str | None = setting(None, "title of the study page (none: the experiment)")
    allow_mixed_versions: bool = setting(
        False, "write a page whose runs were made by different code (marked in bold)"
    )
