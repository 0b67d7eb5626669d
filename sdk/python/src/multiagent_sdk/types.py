"""The generated team models and team classes (``FinanceAnalyzeInvestmentInput``, ``FinanceTeam``...)."""

from ._generated import *  # noqa: F403
from ._generated import __all__ as __all__
