"""Tables stage: paper tables built from the evaluate runs tracked in MLflow."""

from embedlab.tables.sts import COLUMNS, fetch_scores, to_latex, to_markdown

__all__ = ["COLUMNS", "fetch_scores", "to_latex", "to_markdown"]
