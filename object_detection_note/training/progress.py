"""Progress reporting for long loops: rate, ETA and a one-line status."""
import time


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
