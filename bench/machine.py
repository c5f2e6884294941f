"""Description of the machine a benchmark runs on, and its current load."""
import os
import platform
import resource
import threading


def load_average():
  """[1, 5, 15]-minute load averages (floats), or [] where unavailable."""
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except OSError:
    return []


def _cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _cpu_flags():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          flags = set(line.split(':', 1)[1].split())
          return sorted(flags & {'avx', 'avx2', 'fma', 'avx512f',
                                 'avx512_bf16', 'amx_tile'})
  except OSError:
    pass
  return []


def _memory_gib():
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemTotal:'):
          return round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  return None


def peak_rss_mib():
  """Peak resident set size of this process (ru_maxrss), MiB."""
  scale = 1024.0 if platform.system() == 'Linux' else 1024.0 ** 2
  return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)


class TreeRssSampler:
  """Samples the summed RSS of this process and all its descendants.

  ``ru_maxrss`` of children is unreliable for forked workers (it counts the
  parent's pages at fork time), so worker pools (Beam multi-processing) are
  measured by polling with psutil. ``peak_mib`` is None without psutil.
  """

  def __init__(self, interval=0.25):
    self._interval = interval
    self._stop = threading.Event()
    self._thread = None
    self.peak_mib = None

  def _sample(self, psutil):
    process = psutil.Process()
    while not self._stop.is_set():
      total = 0
      for p in [process] + process.children(recursive=True):
        try:
          total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
          pass
      self.peak_mib = max(self.peak_mib or 0.0, round(total / 2**20, 1))
      self._stop.wait(self._interval)

  def __enter__(self):
    try:
      import psutil  # pylint: disable=g-import-not-at-top
    except ImportError:
      return self
    self._thread = threading.Thread(target=self._sample, args=(psutil,),
                                    daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *unused):
    self._stop.set()
    if self._thread is not None:
      self._thread.join()


def describe():
  """Dict: CPU model, cores, RAM, OS, Python, TF / tf-keras / Beam versions."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  try:
    import apache_beam  # pylint: disable=g-import-not-at-top
    beam_version = apache_beam.__version__
  except ImportError:
    beam_version = None
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  return {
      'cpu_model': _cpu_model(),
      'cpu_flags': _cpu_flags(),
      'logical_cpus': os.cpu_count(),
      'usable_cpus': usable,
      'memory_gib': _memory_gib(),
      'os': platform.platform(),
      'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'tf_keras': tf_keras.__version__,
      'apache_beam': beam_version,
      'onednn_opts': os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default (on)'),
      'intra_op_threads': tf.config.threading.get_intra_op_parallelism_threads()
                          or 'default (all cores)',
      'inter_op_threads': tf.config.threading.get_inter_op_parallelism_threads()
                          or 'default (all cores)',
  }
