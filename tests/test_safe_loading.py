"""Model files that would run code when loaded (issue 27, item 2): each carries a payload that creates a
canary file; the export must refuse the file by the op or layer that carries it, and the canary must
never exist. SavedModel folders are screened op by op before TensorFlow loads them (tfscreen);
``.keras`` and ``.h5`` files are screened from their stored configuration before Keras loads them."""

from __future__ import annotations

import pytest

from exporter.frontends.keras.tfscreen import ALLOWED, screen_meta_graphs

from helpers import ROOT, assert_user_error, custom_layer, saved

FIXTURES = ROOT / "tests" / "fixtures" / "keras2"


@pytest.fixture(scope="module")
def tf():
    import tensorflow
    import tf_keras

    return tensorflow, tf_keras


def hostile_saved_model(tf, folder, payload):
    """A TF 2 Keras SavedModel whose serving signature runs ``payload(tf)`` before the model: what
    the exporter runs for its parity reference."""
    tensorflow, tf_keras = tf
    L = tf_keras.layers
    x = tf_keras.Input((4,), name="x")
    model = tf_keras.Model(x, L.Dense(2, name="out")(L.Dense(8, activation="tanh")(x)))

    @tensorflow.function(input_signature=[tensorflow.TensorSpec([None, 4], tensorflow.float32, name="x")])
    def serve(x):
        payload(tensorflow)
        return {"out": model(x)}

    model.save(folder, save_format="tf", signatures={"serving_default": serve})
    return folder


def write_file(canary):
    return lambda t: t.io.write_file(str(canary), "written by the model")


def py_function(canary):
    return lambda t: t.py_function(lambda: canary.write_text("written by Python") and 0.0, [], t.float32)


@pytest.mark.parametrize(("payload", "op"), [(write_file, "WriteFile"), (py_function, "EagerPyFunc")])
@pytest.mark.parametrize("flags", [[], ["--no-check"]])
def test_saved_model_with_a_side_effect_is_refused_by_op(capsys, tf, tmp_path, payload, op, flags):
    canary = tmp_path / "canary"
    model = hostile_saved_model(tf, tmp_path / "hostile", payload(canary))
    assert_user_error(capsys, tmp_path, [model, "-o", tmp_path / "m.c", *flags], "hostile", op, "refused")
    assert not canary.exists()
    assert_user_error(capsys, tmp_path, ["inspect", model], op)
    assert not canary.exists()


def test_clean_saved_models_pass_the_screen(tf):
    from tensorflow.core.protobuf import saved_model_pb2

    for folder in ("generator", "classifier"):
        parsed = saved_model_pb2.SavedModel()
        parsed.ParseFromString((FIXTURES / folder / "saved_model.pb").read_bytes())
        screen_meta_graphs(parsed, folder)


def test_the_checkpoint_functions_may_not_be_called_from_the_model(tf):
    """The saver's SaveV2 function is admitted only as the saver's: a graph node calling it is refused."""
    from tensorflow.core.protobuf import saved_model_pb2

    parsed = saved_model_pb2.SavedModel()
    parsed.ParseFromString((FIXTURES / "classifier" / "saved_model.pb").read_bytes())
    graph = parsed.meta_graphs[0].graph_def
    save = next(f.signature.name for f in graph.library.function if "traced_save" in f.signature.name)
    serving = next(f for f in graph.library.function if "signature_wrapper" in f.signature.name)
    call = next(n for n in serving.node_def if n.op == "StatefulPartitionedCall")
    call.attr["f"].func.name = save
    with pytest.raises(Exception, match="checkpoint function"):
        screen_meta_graphs(parsed, "classifier")
    parsed.meta_graphs.add()  # a second MetaGraph: TensorFlow would load it as TF 1, running its graph
    with pytest.raises(Exception, match="not a TensorFlow 2 SavedModel"):
        screen_meta_graphs(parsed, "classifier")


def test_an_op_of_an_unknown_library_is_refused_by_name(tf):
    """A custom op (loaded from a library by tf.load_op_library when saved) is not on the allow-list."""
    from tensorflow.core.protobuf import saved_model_pb2

    parsed = saved_model_pb2.SavedModel()
    parsed.ParseFromString((FIXTURES / "classifier" / "saved_model.pb").read_bytes())
    function = next(f for f in parsed.meta_graphs[0].graph_def.library.function if "wrapped_model" in f.signature.name)
    next(n for n in function.node_def if n.op == "MatMul").op = "ZeroOutCustom"
    with pytest.raises(Exception, match=rf"function {function.signature.name} runs ZeroOutCustom \(not on the"):
        screen_meta_graphs(parsed, "classifier")


def test_allow_list_holds_no_io_or_python():
    assert not ALLOWED & {"WriteFile", "ReadFile", "SaveV2", "RestoreV2", "PyFunc", "EagerPyFunc", "MatchingFiles"}


def test_keras_file_with_lambda_or_custom_object_is_refused_unloaded(capsys, keras, tmp_path):
    """A ``.keras`` whose Lambda and custom layer would create the canary when Keras rebuilds them."""
    canary = tmp_path / "canary"
    touch = f"open({str(canary)!r}, 'w').close()"
    x = keras.Input((4,))
    y = keras.layers.Lambda(eval(f"lambda t: ({touch}, t)[1]"), name="payload")(x)  # bytecode in the file
    y = custom_layer(keras)(name="doubler")(y)
    canary.unlink()  # the Lambda ran once while the model was built
    path = saved(keras.Model(x, keras.layers.Dense(2)(y)), tmp_path / "models")
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "m.c"], "'payload' (Lambda)", "'doubler' (Doubler)")
    assert_user_error(capsys, tmp_path, ["inspect", path], "cannot export 2 layers")
    assert not canary.exists()


def test_h5_file_with_lambda_is_refused_unloaded(capsys, tf, tmp_path):
    _, tf_keras = tf
    canary = tmp_path / "canary"
    touch = f"open({str(canary)!r}, 'w').close()"
    x = tf_keras.Input((4,))
    y = tf_keras.layers.Lambda(eval(f"lambda t: ({touch}, t)[1]"), name="payload")(x)
    canary.unlink()
    path = tmp_path / "models" / "lambda.h5"
    path.parent.mkdir()
    tf_keras.Model(x, tf_keras.layers.Dense(2)(y)).save(path)
    assert_user_error(capsys, tmp_path, [path, "-o", tmp_path / "m.c"], "'payload' (Lambda)")
    assert not canary.exists()


def test_tf_keras_loads_in_safe_mode(tf, tmp_path, monkeypatch):
    """The TF 2 Keras reference of an ``.h5`` file is loaded in safe mode: a Lambda's bytecode is refused
    even if the configuration screen were bypassed."""
    from exporter.common.errors import ExportError
    from exporter.frontends.keras.keras2 import tf_keras_reference

    _, tf_keras = tf
    canary = tmp_path / "canary"
    x = tf_keras.Input((4,))
    y = tf_keras.layers.Lambda(eval(f"lambda t: (open({str(canary)!r}, 'w').close(), t)[1]"))(x)
    canary.unlink()
    path = tmp_path / "lambda.h5"
    tf_keras.Model(x, y).save(path)
    with pytest.raises(ExportError, match="could not load"):
        tf_keras_reference(path)
    assert not canary.exists()
