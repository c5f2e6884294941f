"""Progress reporting for long loops: rate, ETA and a one-line status."""
import contextlib
import threading
import time

from absl import logging


def format_duration(seconds):
  """12.3 → '12s', 754 → '12m34s', 7384 → '2h03m'."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return '%ds' % seconds
  if seconds < 3600:
    return '%dm%02ds' % divmod(seconds, 60)
  hours, rest = divmod(seconds, 3600)
  return '%dh%02dm' % (hours, rest // 60)


class RateMeter:
  """Measures items per second since the last ``reset`` and predicts an ETA.

  ``clock`` is injectable so the arithmetic is testable.
  """

  def __init__(self, total=None, clock=time.monotonic):
    self._clock = clock
    self._total = total
    self.reset(0)

  def reset(self, done):
    self._start_time = self._clock()
    self._start_done = done

  def rate(self, done):
    elapsed = self._clock() - self._start_time
    if elapsed <= 0 or done <= self._start_done:
      return 0.0
    return (done - self._start_done) / elapsed

  def eta_seconds(self, done):
    rate = self.rate(done)
    if not self._total or rate <= 0:
      return None
    return (self._total - done) / rate

  def status(self, done, unit='steps'):
    """E.g. 'step 120/1000 (12%) 2.10 steps/s ETA 6m59s'."""
    rate = self.rate(done)
    if self._total:
      text = '%d/%d (%d%%)' % (done, self._total, 100 * done // self._total)
    else:
      text = '%d' % done
    text += ' %.2f %s/s' % (rate, unit)
    eta = self.eta_seconds(done)
    if eta is not None:
      text += ' ETA %s' % format_duration(eta)
    return text


# Seconds between progress lines of a ProgressLogger.
DEFAULT_INTERVAL_S = 30.0


class ProgressLogger:
  """Progress of a long loop by time: a line at least every ``interval`` s.

  ``update(done)`` is called after every step/batch/item (``done`` counts
  them). It logs one line right after the first update, with the time that
  setup and tracing took before it, and then whenever ``interval`` seconds
  have passed since the last line (and at ``total``): count, rate and ETA.
  The rate is measured from the first update on, so tracing does not skew
  the ETA. ``heartbeat()`` logs that the loop is still inside a step when no
  line came for ``interval`` seconds; ``keepalive()`` calls it from a
  background thread, so a single step longer than ``interval`` (or tracing)
  is not silent either.

  ``clock`` (seconds, monotonic) and ``log`` (printf-style) are injectable;
  ``update_name`` names what one update stands for in the first line
  (default: one of ``unit``, e.g. 'step'; 'batch' where images come in
  batches).
  """

  def __init__(self, name, total=None, unit='steps',
               interval=DEFAULT_INTERVAL_S, clock=time.monotonic, log=None,
               update_name=None):
    self._name = name
    self._total = total
    self._unit = unit
    self._update_name = update_name or unit.rstrip('s')
    self._interval = float(interval)
    self._clock = clock
    self._log = log or logging.info
    self._meter = RateMeter(total=total, clock=clock)
    self._start = clock()
    self._last_line = self._start
    self._first = None  # done count at the first update
    self._done = 0
    self._lock = threading.Lock()

  @property
  def started(self):
    """Whether the first step/batch has finished."""
    return self._first is not None

  def note_line(self):
    """Another line reported progress just now: restart the interval."""
    with self._lock:
      self._last_line = self._clock()

  def update(self, done, extra=''):
    """Records ``done`` items; logs when due. Returns whether it logged."""
    with self._lock:
      now = self._clock()
      self._done = done
      suffix = (' ' + extra) if extra else ''
      if self._first is None:
        self._first = done
        self._meter.reset(done)
        self._last_line = now
        self._log('%s: %d%s %s after %s (setup, tracing and the first '
                  '%s)%s', self._name, done,
                  ('/%d' % self._total) if self._total else '', self._unit,
                  format_duration(now - self._start), self._update_name,
                  suffix)
        return True
      finished = self._total is not None and done >= self._total
      if now - self._last_line < self._interval and not finished:
        return False
      self._last_line = now
      self._log('%s: %s%s', self._name, self._meter.status(done, self._unit),
                suffix)
      return True

  def heartbeat(self):
    """Logs a 'still running' line if none came for ``interval`` s."""
    with self._lock:
      now = self._clock()
      quiet = now - self._last_line
      if quiet < self._interval:
        return False
      self._last_line = now
      if self._first is None:
        self._log('%s: setting up and tracing the first %s (%s so far)',
                  self._name, self._update_name,
                  format_duration(now - self._start))
      else:
        total = ('/%d' % self._total) if self._total else ''
        self._log('%s: %d%s %s, still running (%s since the last line)',
                  self._name, self._done, total, self._unit,
                  format_duration(quiet))
      return True

  @contextlib.contextmanager
  def keepalive(self, poll_s=None):
    """Calls ``heartbeat`` every ``poll_s`` s (default: interval / 3)."""
    stop = threading.Event()
    poll_s = poll_s or self._interval / 3

    def beat():
      while not stop.wait(poll_s):
        self.heartbeat()

    thread = threading.Thread(target=beat, name='progress-' + self._name,
                              daemon=True)
    thread.start()
    try:
      yield self
    finally:
      stop.set()
      thread.join()
