"""Graph surgery on functional tf_keras models, shared by the extractors.

* ``freeze_batch_norm``: the OD API's frozen batch-norm policy.
* ``l2_kernel_regularizer``: slim-convention weight decay.
* ``ancestor_layers``: the layers a tensor of a functional graph depends on.
* ``add_kernel_regularization``: weight decay for already-built layers.
* ``extract_submodel``: cut a functional model between two tensors; the new
  model shares the layer objects (and so the variables) of the original.
* ``use_convolution_input_gradients``: a faster, equivalent input gradient
  for stride-1 convolutions.
"""

from typing import List, Optional

import tensorflow as tf
import tf_keras


def freeze_batch_norm(model: tf_keras.Model) -> int:
  """Freezes every batch-norm layer of `model`; returns how many.

  In Keras 2, a ``BatchNormalization`` layer with ``trainable=False`` has no
  trainable variables and always normalises with its moving statistics, which
  it never updates, whatever ``training`` is passed to the call.
  """
  count = 0
  for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      layer.trainable = False
      count += 1
  return count


def l2_kernel_regularizer(weight_decay: float):
  """Returns ``weight_decay * tf.nn.l2_loss`` as a Keras regularizer or None.

  slim's ``l2_regularizer(w)`` is ``w * sum(x**2) / 2``; Keras' ``l2(w)`` is
  ``w * sum(x**2)``, hence the factor 0.5 (the OD API uses the same factor).
  """
  if not weight_decay:
    return None
  return tf_keras.regularizers.L2(0.5 * float(weight_decay))


def ancestor_layers(tensor) -> List[tf_keras.layers.Layer]:
  """Layers `tensor` depends on (including the one producing it).

  Args:
    tensor: a Keras tensor of a functional graph.

  Returns:
    list of layer objects, each once, InputLayers included.
  """
  seen = {}
  stack = [tensor]
  while stack:
    kt = stack.pop()
    layer, node_index, _ = kt._keras_history  # pylint: disable=protected-access
    if id(layer) in seen:
      continue
    seen[id(layer)] = layer
    stack.extend(layer._inbound_nodes[node_index].keras_inputs)  # pylint: disable=protected-access
  return list(seen.values())


def add_kernel_regularization(layers, regularizer) -> int:
  """Adds `regularizer(kernel)` of already-built conv layers as layer losses.

  Keras applications are built without regularizers; setting
  ``kernel_regularizer`` after the build has no effect, so each term is
  attached as a callable loss instead (it appears in ``model.losses`` of
  every model containing the layer). Returns the number of kernels.
  """
  if regularizer is None:
    return 0
  count = 0
  for layer in layers:
    if isinstance(layer, tf_keras.layers.Conv2D):
      layer.add_loss(lambda layer=layer: regularizer(layer.kernel))
      count += 1
  return count


def _input_gradient_by_convolution(layer) -> bool:
  """Whether `layer`'s input gradient is a SAME convolution of its own.

  True for plain (not transposed, depthwise or grouped) NHWC stride-1,
  undilated 2-D convolutions whose kernel is 1x1 or odd-sized with SAME
  padding. Checked at call time: the extractors change padding and strides
  of built layers.
  """
  kernel_size = tuple(layer.kernel_size)
  return (type(layer) is tf_keras.layers.Conv2D and  # pylint: disable=unidiomatic-typecheck
          layer.groups == 1 and layer.data_format == 'channels_last' and
          tuple(layer.strides) == (1, 1) and
          tuple(layer.dilation_rate) == (1, 1) and
          (kernel_size == (1, 1) or
           (layer.padding == 'same' and kernel_size[0] % 2 == 1 and
            kernel_size[1] % 2 == 1)))


def _convolution_with_input_gradient_by_convolution(inputs, kernel, padding):
  """``tf.nn.conv2d(inputs, kernel, 1, padding)`` with a faster input gradient.

  The forward op is the one Keras runs. For a stride-1 convolution with a
  1x1 kernel, or an odd kernel and SAME (symmetric) padding, the input
  gradient is the forward convolution of the output gradient with the
  spatially flipped, in/out-transposed kernel: the same sums, which TF's CPU
  kernels compute much faster as a forward convolution than as
  ``Conv2DBackpropInput`` (notably for 1x1 kernels). The kernel gradient is
  TF's own ``Conv2DBackpropFilter``.
  """

  @tf.custom_gradient
  def convolution(x, w):
    y = tf.nn.conv2d(x, w, strides=1, padding=padding)

    def gradient(dy):
      flipped = w if w.shape[0] == w.shape[1] == 1 else tf.reverse(w, [0, 1])
      dx = tf.nn.conv2d(dy, tf.transpose(flipped, [0, 1, 3, 2]), strides=1,
                        padding=padding)
      dw = tf.raw_ops.Conv2DBackpropFilter(
          input=x, filter_sizes=tf.shape(w), out_backprop=dy,
          strides=[1, 1, 1, 1], padding=padding)
      return dx, dw

    return y, gradient

  return convolution(inputs, tf.convert_to_tensor(kernel))


def use_convolution_input_gradients(layers) -> int:
  """Gives eligible Conv2D layers the faster input gradient; returns count.

  Each plain ``Conv2D`` of `layers` gets a ``convolution_op`` that, when the
  layer is eligible at call time (stride 1, no dilation, 1x1 or odd kernel
  with SAME padding, NHWC), runs the same forward op with the input gradient
  of ``_convolution_with_input_gradient_by_convolution``; other calls use
  the layer's own op. Results are unchanged up to float rounding; weights,
  names and serialisation are untouched. Under a mixed precision policy the
  op sees the layer's compute dtype (the kernel is read cast), so both
  gradients are computed in bfloat16 / float16 and the kernel gradient
  reaches the float32 variable through the cast.
  """
  count = 0
  for layer in layers:
    if type(layer) is not tf_keras.layers.Conv2D:  # pylint: disable=unidiomatic-typecheck
      continue
    if getattr(layer, '_input_gradient_by_convolution', False):
      continue
    default_op = layer.convolution_op

    def convolution_op(inputs, kernel, layer=layer, default_op=default_op):
      if _input_gradient_by_convolution(layer):
        return _convolution_with_input_gradient_by_convolution(
            inputs, kernel, layer.padding.upper())
      return default_op(inputs, kernel)

    layer.convolution_op = convolution_op
    layer._input_gradient_by_convolution = True  # pylint: disable=protected-access
    count += 1
  return count


def extract_submodel(model: tf_keras.Model,
                     input_tensor,
                     output_tensor,
                     name: Optional[str] = None) -> tf_keras.Model:
  """Returns a model from `input_tensor` to `output_tensor` of `model`.

  The graph between the two Keras tensors is replayed on a new
  ``keras.Input`` with the original layer objects, so the submodel shares
  variables with `model`. Every path to `output_tensor` must start at
  `input_tensor`.

  Args:
    model: a functional model.
    input_tensor: a Keras tensor of `model` (e.g. ``layer.output``).
    output_tensor: a Keras tensor of `model` downstream of `input_tensor`.
    name: name of the new model.

  Returns:
    A functional ``tf_keras.Model`` taking a tensor shaped like
    `input_tensor` (batch and spatial dims free).

  Raises:
    ValueError: if `output_tensor` depends on other inputs.
  """
  new_input = tf_keras.Input(shape=(None, None, input_tensor.shape[-1]),
                             dtype=input_tensor.dtype)
  computed = {id(input_tensor): new_input}
  depth_keys = sorted(model._nodes_by_depth.keys(), reverse=True)  # pylint: disable=protected-access
  for depth in depth_keys:
    for node in model._nodes_by_depth[depth]:  # pylint: disable=protected-access
      if node.is_input:
        continue
      if all(id(t) in computed for t in tf.nest.flatten(node.outputs)):
        continue
      inputs = node.keras_inputs
      if not inputs or not all(id(t) in computed for t in inputs):
        continue
      # map_arguments pops one entry per use of a tensor.
      tensor_dict = {}
      for t in inputs:
        tensor_dict.setdefault(str(id(t)), []).append(computed[id(t)])
      args, kwargs = node.map_arguments(tensor_dict)
      outputs = node.layer(*args, **kwargs)
      for old, new in zip(tf.nest.flatten(node.outputs),
                          tf.nest.flatten(outputs)):
        computed[id(old)] = new
  if id(output_tensor) not in computed:
    raise ValueError(
        f'Output {output_tensor.name} is not reachable from input '
        f'{input_tensor.name} alone in model {model.name}.')
  return tf_keras.Model(new_input, computed[id(output_tensor)], name=name)
