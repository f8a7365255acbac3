from pipelines.sources.covid_cxr2.source import SOURCE

__all__ = ["SOURCE"]
