from pipelines.sources.nlm_tb.source import SOURCE

__all__ = ["SOURCE"]
