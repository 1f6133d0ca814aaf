# Sourced by the GPU scripts on a lent H100/H200 (JAX and PyTorch, no TensorFlow, no network):
# installs the carried Keras wheels (.whl/, made here by ../shared/tools/device-wheels.sh) and selects JAX.
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
