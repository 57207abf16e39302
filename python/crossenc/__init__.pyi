from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

Pair = Union[Tuple[str, str], List[str]]
Activation = Union[None, Literal["sigmoid", "identity", "softmax"], Callable[[npt.NDArray[np.float32]], Any]]

class CrossEncoder:
    def __init__(
        self,
        model_name_or_path: str,
        max_length: Optional[int] = None,
        device: Optional[str] = None,
        trust_remote_code: bool = False,
        revision: Optional[str] = None,
        activation_fn: Activation = None,
        precision: Literal["f32", "bf16", "int8"] = "f32",
        threads: Optional[int] = None,
        long_docs: Literal["first", "max", "mean"] = "first",
        window_stride: Optional[int] = None,
    ) -> None: ...
    @property
    def num_labels(self) -> int: ...
    @property
    def max_length(self) -> int: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def precision(self) -> str: ...
    @property
    def kernel_path(self) -> str: ...
    @property
    def threads(self) -> int: ...
    @property
    def long_docs(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def activation_fn(self) -> Union[str, Callable[..., Any]]: ...
    @overload
    def predict(
        self,
        sentences: Pair,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Activation = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> Union[np.float32, npt.NDArray[np.float32]]: ...
    @overload
    def predict(
        self,
        sentences: Sequence[Pair],
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Activation = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> npt.NDArray[np.float32]: ...
    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: Optional[int] = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Activation = None,
        threshold: Optional[float] = None,
    ) -> List[Dict[str, Any]]: ...
