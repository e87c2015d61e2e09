"""The bundle factory: the only place LLM context is assembled and token budgets live."""

from bundle_factory.budget import TokenBudget as TokenBudget
from bundle_factory.bundle import BUNDLE_VERSION as BUNDLE_VERSION
from bundle_factory.bundle import BundleContext as BundleContext
from bundle_factory.bundle import CheckStatus as CheckStatus
from bundle_factory.bundle import EvaluationSchema as EvaluationSchema
from bundle_factory.bundle import MetricCheck as MetricCheck
from bundle_factory.bundle import StepAwarenessBundle as StepAwarenessBundle
from bundle_factory.bundle import TokenUsage as TokenUsage
from bundle_factory.catalog import AUTHORITY_LINE as AUTHORITY_LINE
from bundle_factory.catalog import BUNDLE_TYPES as BUNDLE_TYPES
from bundle_factory.catalog import CHAPTER_13_ID as CHAPTER_13_ID
from bundle_factory.catalog import SELFPLAY_ID as SELFPLAY_ID
from bundle_factory.catalog import BundleType as BundleType
from bundle_factory.catalog import bundle_type as bundle_type
from bundle_factory.errors import BudgetError as BudgetError
from bundle_factory.errors import BundleError as BundleError
from bundle_factory.errors import ResultsError as ResultsError
from bundle_factory.errors import RetrievalError as RetrievalError
from bundle_factory.errors import StatePathError as StatePathError
from bundle_factory.errors import TokenizerError as TokenizerError
from bundle_factory.errors import UnknownStepError as UnknownStepError
from bundle_factory.factory import build_llm_context as build_llm_context
from bundle_factory.frozen import FrozenDict as FrozenDict
from bundle_factory.provenance import SHA256_MISSING as SHA256_MISSING
from bundle_factory.provenance import SHA256_UNREADABLE as SHA256_UNREADABLE
from bundle_factory.provenance import ProvenanceRecord as ProvenanceRecord
from bundle_factory.records import Incident as Incident
from bundle_factory.records import OutcomeRecord as OutcomeRecord
from bundle_factory.records import TrendDirection as TrendDirection
from bundle_factory.records import TrendSummary as TrendSummary
from bundle_factory.retrieval import EmptyRetriever as EmptyRetriever
from bundle_factory.retrieval import Retriever as Retriever
from bundle_factory.tokenizer import EstimatorTokenizer as EstimatorTokenizer
from bundle_factory.tokenizer import LlamaVocabTokenizer as LlamaVocabTokenizer
from bundle_factory.tokenizer import Tokenizer as Tokenizer

__all__ = [
    "AUTHORITY_LINE",
    "BUNDLE_TYPES",
    "BUNDLE_VERSION",
    "CHAPTER_13_ID",
    "SELFPLAY_ID",
    "SHA256_MISSING",
    "SHA256_UNREADABLE",
    "BudgetError",
    "BundleContext",
    "BundleError",
    "BundleType",
    "CheckStatus",
    "EmptyRetriever",
    "EstimatorTokenizer",
    "EvaluationSchema",
    "FrozenDict",
    "Incident",
    "LlamaVocabTokenizer",
    "MetricCheck",
    "OutcomeRecord",
    "ProvenanceRecord",
    "ResultsError",
    "RetrievalError",
    "Retriever",
    "StatePathError",
    "StepAwarenessBundle",
    "TokenBudget",
    "TokenUsage",
    "Tokenizer",
    "TokenizerError",
    "TrendDirection",
    "TrendSummary",
    "UnknownStepError",
    "build_llm_context",
    "bundle_type",
]
