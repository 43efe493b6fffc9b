"""Relative position embedding table of the lambda layer."""

import keras
from keras import ops

from lambda_keras.validation import initializer
from lambda_keras.validation import positive_int
from lambda_keras.validation import spatial_sizes
from lambda_keras.validation import validate_max_size
from lambda_keras.validation import validate_scope


@keras.saving.register_keras_serializable(package="lambda_keras")
class RelativePositionEmbedding(keras.layers.Layer):
    """Relative position embeddings R for lambda layers (Sec. 3.2).

    Holds a table R with one (k, u) embedding per relative offset between a
    query position n and a context position m, so that E_nm = R_r(n,m). A
    `LambdaLayer` owns one by default; to share embeddings across layers
    (Table 4, "shared embeddings"), call one `RelativePositionEmbedding` on
    the feature map and pass its output to each layer as
    `position_embeddings`:

    ```python
    embedding = RelativePositionEmbedding(dim_k=16, scope=None, max_size=14)
    table = embedding(x)
    x = LambdaLayer(scope=None)(x, position_embeddings=table)
    x = LambdaLayer(scope=None)(x, position_embeddings=table)
    ```

    The output ignores the values of its input: only the input's rank (and,
    for a global table without `max_size`, its spatial size) matter.

    Args:
        dim_k: query/key depth |k|.
        dim_u: intra-depth |u|.
        scope: odd local scope r, giving an (r,) or (r, r) table; or None
            for a global table covering every offset of inputs up to
            `max_size`.
        max_size: largest input length (sequences) or height and width
            (images) for a global table; an int or a tuple. Defaults to the
            spatial size of the input the layer is built on.
        embeddings_initializer: initializer of the table; defaults to the
            unit normal of the paper (Appendix D).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        (b, L, d) or (b, H, W, d).

    Output shape:
        (T, k, u) for sequences or (T_h, T_w, k, u) for images, with T = r
        for a local scope and T = 2 * max_size - 1 for a global one. The
        table is float32 under mixed precision.
    """

    def __init__(
        self,
        dim_k=16,
        dim_u=1,
        scope=23,
        max_size=None,
        embeddings_initializer=None,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.dim_k = positive_int("dim_k", dim_k)
        self.dim_u = positive_int("dim_u", dim_u)
        self.scope = validate_scope(scope)
        self.max_size = validate_max_size(max_size, self.scope)
        self.embeddings_initializer = initializer(
            "embeddings_initializer",
            embeddings_initializer
            or keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
        )

    def build(self, inputs_shape):
        spatial_shape = tuple(inputs_shape[1:-1])
        self.table = self.add_weight(
            name="table",
            shape=self.table_shape(spatial_shape),
            initializer=self.embeddings_initializer,
            dtype=self.variable_dtype,
        )

    def table_shape(self, spatial_shape):
        """Shape of the table for an input of the given spatial shape."""
        rank = len(spatial_shape)
        if rank not in (1, 2):
            raise ValueError(
                "Inputs must have rank 3 (batch, length, channels) or rank 4 "
                f"(batch, height, width, channels). Received: input_shape "
                f"with spatial shape {spatial_shape}"
            )
        depths = (self.dim_k, self.dim_u)
        if self.scope is not None:
            return (self.scope,) * rank + depths
        if self.max_size is not None:
            sizes = spatial_sizes(self.max_size, rank)
        elif all(size is not None for size in spatial_shape):
            if 0 in spatial_shape:
                raise ValueError(
                    "A global position embedding (scope=None) without "
                    "`max_size` is sized by its input, which must not be "
                    "empty. Received: input spatial shape "
                    f"{spatial_shape}, max_size=None"
                )
            sizes = spatial_shape
        else:
            raise ValueError(
                "A global position embedding (scope=None) needs `max_size` "
                "when the input's spatial size is not known. Received: "
                f"input spatial shape {spatial_shape}, max_size=None"
            )
        return tuple(2 * size - 1 for size in sizes) + depths

    def call(self, inputs):
        del inputs  # only its shape matters, and build() has used it
        return ops.convert_to_tensor(self.table)

    def compute_output_shape(self, inputs_shape):
        return tuple(self.table.shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim_k": self.dim_k,
                "dim_u": self.dim_u,
                "scope": self.scope,
                "max_size": self.max_size,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
