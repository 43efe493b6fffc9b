"""The lambda layer (Bello, ICLR 2021)."""

import math

import keras
from keras import ops

from lambda_keras.layers.relative_position_embedding import RelativePositionEmbedding
from lambda_keras.ops import CONV_FORMULATIONS
from lambda_keras.ops import KEY_NORMALIZATIONS
from lambda_keras.ops import lambda_interaction
from lambda_keras.ops import position_method
from lambda_keras.ops import validate_implementation
from lambda_keras.validation import initializer
from lambda_keras.validation import positive_int
from lambda_keras.validation import validate_max_size
from lambda_keras.validation import validate_scope


@keras.saving.register_keras_serializable(package="lambda_keras")
class LambdaLayer(keras.layers.Layer):
    """Multi-query lambda layer with content and position lambdas.

    Maps each input position to queries, and the context (the input itself)
    to keys and values, then summarises the context into linear functions
    (lambdas) applied to the queries, without attention maps (Eq. 1-4):

    ```
    Q = BN(X W_Q)  (b, n, h, k)    K = softmax_m(X W_K)  (b, m, k, u)
    V = BN(X W_V)  (b, m, v, u)    E_nm = R[m - n]      (n, m, k, u)
    lambda_n = sum_m K_m V_m^T + sum_m E_nm V_m^T       (k, v)
    y_n = concat_h(lambda_n q^h_n)                       (h * v)
    ```

    The position lambdas use a global context (`scope=None`, relative
    embeddings for every offset of inputs up to `max_size`) or a local
    r x r context (`scope=r`), computed either by masking the global einsum
    or by the lambda convolution of Eq. 3. With `causal=True` or a
    `context_mask`, query n only sees its visible context C_n, keys are
    normalised over C_n, and both lambdas are masked (Eq. 5).

    Under a `mixed_float16` or `mixed_bfloat16` policy only the q/k/v
    projection computes in 16 bits: the batch normalisations, the key
    normalisation and the lambdas run in float32, and the output is cast
    back. An output beyond float16's range (65504) is inf, as with any Keras
    layer: e.g. in inference with batch-norm statistics that do not
    normalise the inputs (the initial ones, on inputs of 100 and more).

    Args:
        filters: output channels |h| * |v|; defaults to the input channels.
            Must be divisible by `heads`.
        dim_k: query/key depth |k| (paper default 16).
        heads: number of queries per position |h| (paper default 4).
        dim_u: intra-depth |u| (paper default 1).
        scope: odd size r of the local context of the position lambdas
            (paper default 23, i.e. 23x23 for images), or None for a global
            context.
        max_size: largest input length (sequences) or (height, width)
            (images) accepted with `scope=None`; an int or a tuple. One
            layer then runs at any input size up to it. Defaults to the size
            of the input the layer is built on. With a local scope it only
            bounds `scope` (at most 2 * max_size - 1).
        use_content: whether to use the content lambda (Table 8).
        use_position: whether to use the position lambdas (Table 8).
        key_normalization: "softmax" over context positions (default),
            "l2" or "none" (Table 10).
        implementation: "einsum" (masked global einsum, Eq. 4), "conv"
            (lambda convolution, Eq. 3; local scope only) or "auto", which
            uses the convolution for a local scope once the einsum needs
            more than `lambda_keras.ops.CONV_COST_RATIO` times its
            multiply-adds, or when the input size is unknown. Each call
            picks its method from its input size with
            `lambda_keras.ops.position_method`. The paper switches above
            85^2 positions on TPUs. "auto" and "conv" compute the
            convolution in the formulation that
            `lambda_keras.ops.CONV_FORMULATION_TABLE` names for the
            backend and platform; "conv3d", "conv2d" or "depthwise" force
            one (see `lambda_keras.ops.lambda_convolution`). All give the
            same result from the same weights.
        causal: if True, output n only depends on input positions <= n
            (raster order for images), for content and position lambdas,
            with keys normalised over the visible context. Batch
            normalisation in training mode pools statistics over all
            positions; set `use_batch_norm=False` for strictly causal
            training.
        strides: 1, or 2 to downsample with an average pool of stride 2
            after the layer (Appendix D; see `pool_size`).
        use_batch_norm: batch normalisation after the query and value
            projections (Table 10).
        batch_norm_epsilon: epsilon of those batch normalisations (PyTorch
            ports such as timm use 1e-5).
        pool_size: size of the average pool used with `strides=2` (3 in the
            paper; timm uses 2).
        use_position_bias: add a learned bias b_k to every position lambda,
            as the bias of timm's lambda convolution does.
        kernel_initializer: initializer of the q/k/v projection.
        embeddings_initializer: initializer of the relative position
            embeddings; defaults to the unit normal (Appendix D).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (b, L, d) sequences or (b, H, W, d) images.
        training: whether batch normalisation runs in training mode.
        context_mask: optional (n, m) tensor of 0/1 with n = m = L or H * W
            (raster order); query n only sees positions m with
            `context_mask[n, m] = 1`. Uses the einsum implementation.
        position_embeddings: optional relative table from a shared
            `RelativePositionEmbedding` (Table 4, "shared embeddings"). A
            layer built with it does not own embeddings and needs it on
            every call.

    Input shape:
        (b, L, d) or (b, H, W, d).

    Output shape:
        (b, L', filters) or (b, H', W', filters), with L' = ceil(L / 2)
        (and so on) when `strides=2`.

    Example:

    >>> layer = LambdaLayer(dim_k=16, heads=4, scope=7)
    >>> layer(np.zeros((2, 14, 14, 64))).shape
    (2, 14, 14, 64)
    """

    def __init__(
        self,
        filters=None,
        dim_k=16,
        heads=4,
        dim_u=1,
        scope=23,
        max_size=None,
        use_content=True,
        use_position=True,
        key_normalization="softmax",
        implementation="auto",
        causal=False,
        strides=1,
        use_batch_norm=True,
        batch_norm_epsilon=1e-3,
        pool_size=3,
        use_position_bias=False,
        kernel_initializer="glorot_uniform",
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dim_k = positive_int("dim_k", dim_k)
        self.heads = positive_int("heads", heads)
        self.dim_u = positive_int("dim_u", dim_u)
        if filters is not None:
            positive_int("filters", filters)
            _check_divisible(filters, heads)
        self.filters = filters
        self.scope = validate_scope(scope)
        self.max_size = validate_max_size(max_size, self.scope)
        if not (use_content or use_position):
            raise ValueError(
                "At least one of `use_content` and `use_position` must be "
                "True. Received: use_content=False, use_position=False"
            )
        self.use_content = bool(use_content)
        self.use_position = bool(use_position)
        if key_normalization not in KEY_NORMALIZATIONS:
            raise ValueError(
                f"`key_normalization` must be one of {KEY_NORMALIZATIONS}. "
                f"Received: key_normalization={key_normalization!r}"
            )
        self.key_normalization = key_normalization
        self.implementation = validate_implementation(implementation, self.scope)
        if not isinstance(causal, bool):
            raise ValueError(f"`causal` must be a bool. Received: causal={causal!r}")
        self.causal = causal
        if (
            strides not in (1, 2)
            or not isinstance(strides, int)
            or isinstance(strides, bool)
        ):
            raise ValueError(f"`strides` must be 1 or 2. Received: strides={strides!r}")
        self.strides = strides
        self.use_batch_norm = bool(use_batch_norm)
        if isinstance(batch_norm_epsilon, bool) or not (
            isinstance(batch_norm_epsilon, (int, float))
            and 0 < batch_norm_epsilon < math.inf
        ):
            raise ValueError(
                "`batch_norm_epsilon` must be a positive finite number. Received: "
                f"batch_norm_epsilon={batch_norm_epsilon!r}"
            )
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.pool_size = positive_int("pool_size", pool_size)
        if use_position_bias and not use_position:
            raise ValueError(
                "`use_position_bias` adds a bias to the position lambdas and "
                "needs `use_position=True`. Received: use_position_bias=True, "
                "use_position=False"
            )
        self.use_position_bias = bool(use_position_bias)
        self.kernel_initializer = initializer("kernel_initializer", kernel_initializer)
        self.embeddings_initializer = initializer(
            "embeddings_initializer",
            embeddings_initializer
            or keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
        )

    def build(self, inputs_shape, position_embeddings_shape=None):
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) not in (3, 4):
            raise ValueError(
                "`LambdaLayer` takes inputs of rank 3 (batch, length, "
                "channels) or rank 4 (batch, height, width, channels). "
                f"Received: input_shape={inputs_shape}"
            )
        channels = inputs_shape[-1]
        if channels is None:
            raise ValueError(
                "The channel dimension of the inputs must be known. "
                f"Received: input_shape={inputs_shape}"
            )
        self.input_channels = channels
        self.output_channels = self.filters or channels
        _check_divisible(self.output_channels, self.heads)
        self.dim_v = self.output_channels // self.heads
        self.spatial_rank = len(inputs_shape) - 2
        spatial_shape = inputs_shape[1:-1]

        query_channels = self.heads * self.dim_k
        self.qkv_projection = keras.layers.Dense(
            query_channels + (self.dim_k + self.dim_v) * self.dim_u,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="qkv_projection",
        )
        self.qkv_projection.build(inputs_shape)
        if self.use_batch_norm:
            # Under a float16 / bfloat16 policy the normalisations return
            # float32, the dtype the interaction reads: Keras' batch
            # normalisation computes in float32 anyway, and a 16-bit output
            # would be rounded (and overflow past 65504 in float16) only to
            # be cast back.
            norm_dtype = (
                self._accumulation_dtype
                if self._accumulation_dtype != self.compute_dtype
                else self.dtype_policy
            )
            self.query_norm = keras.layers.BatchNormalization(
                epsilon=self.batch_norm_epsilon,
                dtype=norm_dtype,
                name="query_norm",
            )
            self.query_norm.build(inputs_shape[:-1] + (query_channels,))
            self.value_norm = keras.layers.BatchNormalization(
                epsilon=self.batch_norm_epsilon,
                dtype=norm_dtype,
                name="value_norm",
            )
            self.value_norm.build(inputs_shape[:-1] + (self.dim_v * self.dim_u,))
        self.position_embedding = None
        if self.use_position and position_embeddings_shape is None:
            self.position_embedding = RelativePositionEmbedding(
                dim_k=self.dim_k,
                dim_u=self.dim_u,
                scope=self.scope,
                max_size=self.max_size,
                embeddings_initializer=self.embeddings_initializer,
                dtype=self.dtype_policy,
                name="position_embedding",
            )
            self.position_embedding.build(inputs_shape)
            self._check_table(tuple(self.position_embedding.table.shape), spatial_shape)
        elif position_embeddings_shape is not None:
            self._check_table(tuple(position_embeddings_shape), spatial_shape)
        if self.use_position_bias:
            self.position_bias = self.add_weight(
                name="position_bias", shape=(self.dim_k,), initializer="zeros"
            )
        if self.strides == 2:
            pooling = (
                keras.layers.AveragePooling1D
                if self.spatial_rank == 1
                else keras.layers.AveragePooling2D
            )
            self.downsample = pooling(
                pool_size=self.pool_size,
                strides=2,
                padding="same",
                dtype=self.dtype_policy,
            )

    def call(self, inputs, training=None, context_mask=None, position_embeddings=None):
        self._check_call_shape(tuple(inputs.shape))
        shape = ops.shape(inputs)
        batch, spatial_shape = shape[0], tuple(shape[1:-1])
        positions = math.prod(spatial_shape)
        if any(isinstance(size, int) and size == 0 for size in shape[:-1]):
            # An empty input has no statistics to learn: in training mode
            # Keras' batch normalisation would average over no positions
            # and write NaN into its moving statistics.
            training = False

        qkv = self.qkv_projection(inputs)
        query_channels = self.heads * self.dim_k
        key_channels = self.dim_k * self.dim_u
        queries = qkv[..., :query_channels]
        keys = qkv[..., query_channels : query_channels + key_channels]
        values = qkv[..., query_channels + key_channels :]
        if self.use_batch_norm:
            queries = self.query_norm(queries, training=training)
            values = self.value_norm(values, training=training)
        # Key normalisation and lambda accumulation run in float32 (or
        # wider), also under mixed_float16 / mixed_bfloat16 policies.
        dtype = self._accumulation_dtype
        queries = ops.reshape(
            ops.cast(queries, dtype), (batch, positions, self.heads, self.dim_k)
        )
        keys = ops.reshape(
            ops.cast(keys, dtype), (batch, positions, self.dim_k, self.dim_u)
        )
        values = ops.reshape(
            ops.cast(values, dtype), (batch, positions, self.dim_v, self.dim_u)
        )

        table, method = None, None
        if self.use_position:
            table = self._table(inputs, position_embeddings, spatial_shape)
            method = position_method(
                spatial_shape,
                self.heads,
                self.dim_k,
                self.dim_v,
                self.dim_u,
                self.scope,
                # The lambda convolution cannot apply a general mask.
                "einsum" if context_mask is not None else self.implementation,
            )
        outputs = lambda_interaction(
            queries,
            keys if self.use_content else None,
            values,
            mask=self._context_mask(positions, context_mask),
            table=table,
            spatial_shape=spatial_shape,
            causal=self.causal,
            key_normalization=self.key_normalization,
            position_bias=self.position_bias if self.use_position_bias else None,
            position_method=method,
            # None: the cost table's formulation.
            convolution_formulation=(
                self.implementation
                if self.implementation in CONV_FORMULATIONS
                else None
            ),
        )
        outputs = ops.reshape(
            ops.cast(outputs, self.compute_dtype),
            (batch,) + spatial_shape + (self.output_channels,),
        )
        if self.strides == 2:
            outputs = self.downsample(outputs)
        return outputs

    def _check_call_shape(self, inputs_shape):
        """The rank and channels of a call's input are those built for."""
        if (
            len(inputs_shape) != self.spatial_rank + 2
            or inputs_shape[-1] != self.input_channels
        ):
            kind = "sequences" if self.spatial_rank == 1 else "images"
            raise ValueError(
                f"Layer '{self.name}' was built for {kind} of rank "
                f"{self.spatial_rank + 2} with {self.input_channels} "
                "channels; every call needs the same rank and channels. "
                f"Received: input_shape={inputs_shape}"
            )

    @property
    def _accumulation_dtype(self):
        """float32 for 16-bit compute dtypes, else the compute dtype."""
        if self.compute_dtype in ("float16", "bfloat16"):
            return "float32"
        return self.compute_dtype

    def _context_mask(self, positions, context_mask):
        """`context_mask` checked and cast to float32, or None."""
        if context_mask is None:
            return None
        context_mask = ops.cast(ops.convert_to_tensor(context_mask), "float32")
        expected = (positions, positions)
        if len(context_mask.shape) != 2 or (
            isinstance(positions, int)
            and tuple(context_mask.shape) not in (expected, (None, None))
        ):
            raise ValueError(
                "`context_mask` must have shape (n, m) = "
                f"({positions}, {positions}) for this input. Received: "
                f"context_mask.shape={tuple(context_mask.shape)}"
            )
        return context_mask

    def _table(self, inputs, position_embeddings, spatial_shape):
        """The relative position table used by this call."""
        if position_embeddings is None:
            if self.position_embedding is None:
                raise ValueError(
                    f"Layer '{self.name}' was built with shared "
                    "`position_embeddings` and needs them on every call. "
                    "Received: position_embeddings=None"
                )
            table = self.position_embedding(inputs)
        else:
            if self.position_embedding is not None:
                raise ValueError(
                    f"Layer '{self.name}' owns its position embeddings; pass "
                    "shared `position_embeddings` from the first call on, or "
                    "never. Received: position_embeddings with shape "
                    f"{tuple(position_embeddings.shape)}"
                )
            table = position_embeddings
        self._check_table(tuple(table.shape), spatial_shape)
        return ops.cast(table, self._accumulation_dtype)

    def _check_table(self, table_shape, spatial_shape):
        expected_depths = (self.dim_k, self.dim_u)
        if (
            len(table_shape) != self.spatial_rank + 2
            or tuple(table_shape[-2:]) != expected_depths
        ):
            raise ValueError(
                "`position_embeddings` must have shape (T, k, u) for "
                "sequences or (T_h, T_w, k, u) for images, with (k, u) = "
                f"{expected_depths}. Received: position_embeddings.shape="
                f"{table_shape}"
            )
        extents = table_shape[:-2]
        if self.scope is not None:
            if any(extent != self.scope for extent in extents):
                raise ValueError(
                    f"A local table for `scope`={self.scope} must have "
                    f"spatial extent {self.scope}. Received: "
                    f"position_embeddings.shape={table_shape}"
                )
            return
        for extent, size in zip(extents, spatial_shape):
            if isinstance(size, int) and 2 * size - 1 > extent:
                largest = tuple((extent + 1) // 2 for extent in extents)
                raise ValueError(
                    "The input is larger than the declared maximum size of "
                    f"the global position embeddings (`max_size`={largest}). "
                    f"Received: input spatial shape {tuple(spatial_shape)}"
                )

    def compute_output_shape(self, inputs_shape):
        inputs_shape = tuple(inputs_shape)
        if self.built:  # symbolic calls (keras.Input) do not run `call`
            self._check_call_shape(inputs_shape)
        spatial_shape = inputs_shape[1:-1]
        if self.strides == 2:
            spatial_shape = tuple(
                None if size is None else -(-size // 2) for size in spatial_shape
            )
        channels = self.filters or inputs_shape[-1]
        return (inputs_shape[0],) + spatial_shape + (channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "dim_k": self.dim_k,
                "heads": self.heads,
                "dim_u": self.dim_u,
                "scope": self.scope,
                "max_size": self.max_size,
                "use_content": self.use_content,
                "use_position": self.use_position,
                "key_normalization": self.key_normalization,
                "implementation": self.implementation,
                "causal": self.causal,
                "strides": self.strides,
                "use_batch_norm": self.use_batch_norm,
                "batch_norm_epsilon": self.batch_norm_epsilon,
                "pool_size": self.pool_size,
                "use_position_bias": self.use_position_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config


def _check_divisible(filters, heads):
    if filters % heads:
        raise ValueError(
            "The output channels `filters` must be divisible by `heads` "
            "(the value depth is filters / heads). Received: "
            f"filters={filters}, heads={heads}"
        )
