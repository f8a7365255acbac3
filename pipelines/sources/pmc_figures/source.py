"""PMC-Figures: the figure store that PMC-Inline and PMC-CaseReport reference (RadFM's ``all_images/figures``).

Layout: one folder of figure files named ``<PMCID>_<figure id>.jpg`` (``PMC1999654_pone-0001008-g001.jpg``), the
PMC id of the paper and the figure's id in the paper's XML. It has no samples of its own: PMC-Inline's papers and
PMC-CaseReport's rows name figures by (PMC id, figure id), and those builds read them from here.

Configured once: the build looks for it beside the dataset's raw root (``<raw>/../pmc_figures``, the layout
``make shards RAW=...`` uses) or takes ``--store pmc_figures=DIR``; it checks that the folder holds files of this
layout before planning. ``make shards DATASET=pmc_figures`` checks the whole folder and says which datasets use it.
"""

from __future__ import annotations

import re

from pipelines.sources.base import Store

STORE = "pmc_figures"
#: ``<PMCID>_<figure id>.jpg``
FIGURE_NAME = re.compile(r"^PMC\d+_[^/\\]+\.jpe?g$", re.IGNORECASE)


def figure_file(pmcid: str, figure_id: str) -> str:
    """The store's name of a figure (RadFM: ``img_path + '/' + PMC_id + '_' + img_id + '.jpg'``)."""
    return f"{pmcid}_{figure_id}.jpg"


class PmcFigures(Store):
    name = STORE
    description = "PMC-Figures, the figure store of PubMed Central papers, files <PMCID>_<figure id>.jpg"

    def follows_layout(self, name: str) -> bool:
        return bool(FIGURE_NAME.match(name))


SOURCE = PmcFigures()
