"""`predict_files` from a SavedModel and from a Keras model agree."""

import numpy as np
from export_helpers import CLASS_NAMES
from export_helpers import small_model

from lambda_keras.export import export_saved_model
from lambda_keras.export.predict import format_predictions
from lambda_keras.export.predict import keras_signature
from lambda_keras.export.predict import load_saved_model_signature
from lambda_keras.export.predict import predict_files


def test_saved_model_and_keras_model_give_the_same_predictions(image_files, tmp_path):
    model = small_model()
    base = tmp_path / "model"
    export_saved_model(model, base, 1, class_names=CLASS_NAMES, top_k=2)
    export_saved_model(model, base, 4, class_names=CLASS_NAMES)
    signature, version_dir = load_saved_model_signature(base)
    assert version_dir == str(base / "4")
    missing = tmp_path / "missing.jpg"
    files = [*image_files, missing]
    from_saved_model = predict_files(signature, files, top_k=2)
    from_keras = predict_files(
        keras_signature(model, class_names=CLASS_NAMES), files, top_k=2
    )
    for saved, keras in zip(from_saved_model[:-1], from_keras[:-1]):
        assert saved.error is None and len(saved.classes) == 2
        assert saved.classes == keras.classes
        assert saved.class_names == [CLASS_NAMES[i] for i in saved.classes]
        np.testing.assert_allclose(saved.scores, keras.scores, atol=1e-5)
        assert saved.scores[0] >= saved.scores[1]
    assert "No such file" in from_saved_model[-1].error
    lines = format_predictions(from_saved_model)
    assert lines[0] == f"{image_files[0]}:"
    assert lines[1].startswith("  1. ") and lines[1].endswith(
        f"  {from_saved_model[0].class_names[0]} "
        f"(class {from_saved_model[0].classes[0]})"
    )
    assert lines[-1].startswith("  error: [Errno 2] No such file")
