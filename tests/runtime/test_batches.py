"""Whether a Segmenter batches is read from the graph's input shape, not from the export's history."""

import numpy as np
import pytest

from segdeploy.runtime.segmenter import Segmenter


def _batch_sizes(segmenter: Segmenter, images) -> tuple[list[int], list[np.ndarray]]:
    """The batch size of every backend call predict_batch makes, and its masks."""
    sizes, run = [], segmenter.run

    def counting(batch):
        sizes.append(batch.shape[0])
        return run(batch)

    segmenter.run = counting
    return sizes, segmenter.predict_batch(images)


@pytest.mark.slow  # two exports of the variants, ~11 s on 2 cores
@pytest.mark.parametrize("dynamic, expected", [(True, [3]), (False, [1, 1, 1])])
def test_static_graphs_run_one_by_one_and_dynamic_ones_in_one_batch(export_variant, dynamic, expected):
    report = export_variant(dynamic=dynamic, input_size=(32, 48))
    images = [np.full((40, 50, 3), value, np.uint8) for value in (0, 90, 200)]  # stretch: all land on 32x48
    with Segmenter(report.output, threads=1) as segmenter:
        sizes, masks = _batch_sizes(segmenter, images)
        assert sizes == expected
        for mask, image in zip(masks, images):
            np.testing.assert_array_equal(mask, segmenter.predict(image))
    with Segmenter(report.output, threads=1) as segmenter:
        history = [dict(record) for record in segmenter.meta.history if record.get("stage") != "export"]
        segmenter.meta = segmenter.meta.replace(history=tuple(history))  # no export record: same decision
        assert _batch_sizes(segmenter, images)[0] == expected
