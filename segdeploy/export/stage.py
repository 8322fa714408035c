"""``export_model``: the export stage as one call: checkpoint/preset -> verified ONNX [-> OpenVINO IR],
or an exported ONNX -> OpenVINO IR."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from segdeploy.errors import BadInputError, CheckFailedError, UsageError
from segdeploy.export.adopt_config import FactoryConfig
from segdeploy.export.config import ExportConfig, ExportReport
from segdeploy.export.openvino_ir import OpenVinoConfig, OpenVinoReport


class ExportFormat(StrEnum):
    ONNX = "onnx"
    OPENVINO = "openvino"  # IR (.xml + .bin), made from a verified ONNX written beside it


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote: the ONNX report (None when converting an existing ONNX) and the IR report."""

    onnx: ExportReport | None
    openvino: OpenVinoReport | None

    def to_dict(self) -> dict[str, Any]:
        if self.openvino is None:
            return self.onnx.to_dict()
        if self.onnx is None:
            return self.openvino.to_dict()
        return {"onnx": self.onnx.to_dict(), "openvino": self.openvino.to_dict()}


def default_export_path(source: str | os.PathLike, export_format: ExportFormat) -> Path:
    """``<stem>.onnx`` in the working folder, ``.xml`` for OpenVINO; an ONNX source converts beside itself."""
    source = Path(source)
    if source.suffix == ".onnx":
        return source.with_suffix(".xml")
    return Path(source.stem + (".xml" if export_format == ExportFormat.OPENVINO else ".onnx"))


def export_model(source: str | os.PathLike | None, out: str | os.PathLike | None = None,
                 config: ExportConfig = ExportConfig(), export_format: ExportFormat = ExportFormat.ONNX,
                 openvino: OpenVinoConfig = OpenVinoConfig(), arch: str | None = None,
                 num_classes: int | None = None, factory: FactoryConfig | None = None) -> ExportResult:
    """Export ``source`` (checkpoint, state dict with ``arch``/``num_classes``, preset name, or an ONNX
    for ``ExportFormat.OPENVINO``) or the module ``factory`` builds (then ``source`` is None); every file
    written is verified first. ``out`` None: the default path (for a factory, named by its function)."""
    export_format = ExportFormat(export_format)
    if (source is None) == (factory is None):
        raise UsageError("give either SOURCE or --model-factory")
    named = source if source is not None else factory.factory.rpartition(":")[2]
    out = Path(out) if out is not None else default_export_path(named, export_format)
    try:
        if factory is not None:
            return _export_factory(factory, out, config, export_format, openvino)
        return _export(source, out, config, export_format, openvino, arch, num_classes)
    except CheckFailedError as failure:  # the report it carries becomes an ExportResult, as success gives
        report = failure.report
        result = ExportResult(report, None) if isinstance(report, ExportReport) else ExportResult(None, report)
        raise CheckFailedError(str(failure), result if report is not None else None) from failure


def _export(source, out: Path, config: ExportConfig, export_format: ExportFormat, openvino: OpenVinoConfig,
            arch: str | None, num_classes: int | None) -> ExportResult:
    if str(source).endswith(".pt2"):
        raise BadInputError(f"{Path(source).name}: segdeploy does not load torch.export programs (.pt2): loading one "
                            "can run code from the file (pickled constants, shape expressions through eval, "
                            "AOTInductor libraries); export to ONNX and 'segdeploy adopt' it, or use --model-factory "
                            "with .safetensors weights")
    if str(source).endswith(".onnx"):
        if export_format != ExportFormat.OPENVINO:
            raise UsageError(f"{source} is already ONNX; convert it with --format openvino")
        from segdeploy.export.openvino_ir import export_openvino

        return ExportResult(None, export_openvino(source, out, openvino))
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.models.checkpoint import load_model

    model, meta = load_model(source, arch=arch, num_classes=num_classes)
    if export_format == ExportFormat.ONNX:
        return ExportResult(export_onnx(model, out, config, meta), None)
    from segdeploy.export.openvino_ir import export_model_to_openvino

    return ExportResult(*export_model_to_openvino(model, meta, out, config, openvino))


def _export_factory(factory: FactoryConfig, out: Path, config: ExportConfig, export_format: ExportFormat,
                    openvino: OpenVinoConfig) -> ExportResult:
    from segdeploy.export.factory import factory_model
    from segdeploy.export.onnx_export import export_onnx

    model, meta = factory_model(factory)
    meta = meta.replace(source={"path": str(out)})  # no eager checkpoint: later artifacts compare with this ONNX
    if export_format == ExportFormat.ONNX:
        return ExportResult(export_onnx(model, out, config, meta), None)
    from segdeploy.export.openvino_ir import export_model_to_openvino

    return ExportResult(*export_model_to_openvino(model, meta, out, config, openvino))
