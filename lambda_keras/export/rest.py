"""The JSON body of a TF Serving REST `:predict` request.

TF Serving's REST API (`POST /v1/models/NAME[/versions/N]:predict`) takes
`{"signature_name": ..., "instances": [...]}` ("row" format): one object per
image, keyed by the signature's input names. Binary inputs travel as
`{"b64": "<base64>"}`; `serving_default`'s input is named `image_bytes` so
that clients (and Google's serving front ends) know to send it that way.
The response is `{"predictions": [{"probabilities": [...], "classes": [...],
"scores": [...], "class_names": [...]}, ...]}`, one object per image.
"""

import base64
import os

from lambda_keras.export.signatures import SERVING_DEFAULT


def predict_request(images, signature_name=SERVING_DEFAULT):
    """Builds the JSON body (a dict) a client POSTs to `:predict`.

    Args:
        images: paths of JPEG or PNG files, or their bytes.
        signature_name: the signature to run; its input must be
            `image_bytes` (`serving_default`).

    Returns:
        `{"signature_name": ..., "instances": [{"image_bytes": {"b64":
        ...}}, ...]}`, ready for `json.dumps`.
    """
    instances = []
    for image in images:
        if isinstance(image, (str, os.PathLike)):
            with open(image, "rb") as file:
                image = file.read()
        if not isinstance(image, bytes):
            raise ValueError(
                "`images` must hold file paths or bytes. "
                f"Received: images element of type {type(image).__name__}"
            )
        encoded = base64.b64encode(image).decode("ascii")
        instances.append({"image_bytes": {"b64": encoded}})
    return {"signature_name": signature_name, "instances": instances}
