"""One module per rule family; each rule a small class (see base.Check).

Importing this package imports LibCST: only the engine does, and only when a file
has to be checked (a run served from the result cache never does).
"""

from lintml.checks.amp import ClipBeforeUnscale, Fp16AutocastWithoutGradScaler, GradScalerBypassed
from lintml.checks.base import Check
from lintml.checks.gradients import GradModeNotCalled, InferenceWithoutNoGrad, LossAccumulatedWithGraph
from lintml.checks.hygiene import MissingZeroGrad
from lintml.checks.kvcache import CacheDisabledInConfig, DecodingLoopWithoutCache, GenerateWithoutKvCache
from lintml.checks.loops import ForwardCalledDirectly
from lintml.checks.modes import (
    InferenceWithoutEval,
    ModeMethodNotCalled,
    QuantizeWithoutEval,
    TrainingInEvalMode,
    TrainModeNotRestored,
)
from lintml.checks.precision import Fp16WeightsTrained, HalfDefaultDtype, HalfPrecisionOnCpu, Tf32Enabled

# Every check, each once; their codes are lintml.registry.RULES less the meta codes.
CHECKS: tuple[type[Check], ...] = (
    InferenceWithoutNoGrad,
    LossAccumulatedWithGraph,
    GradModeNotCalled,
    InferenceWithoutEval,
    TrainModeNotRestored,
    TrainingInEvalMode,
    ModeMethodNotCalled,
    QuantizeWithoutEval,
    GenerateWithoutKvCache,
    CacheDisabledInConfig,
    DecodingLoopWithoutCache,
    HalfDefaultDtype,
    Tf32Enabled,
    HalfPrecisionOnCpu,
    Fp16WeightsTrained,
    Fp16AutocastWithoutGradScaler,
    GradScalerBypassed,
    ClipBeforeUnscale,
    ForwardCalledDirectly,
    MissingZeroGrad,
)
