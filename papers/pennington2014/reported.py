"""Published numbers for the vector sets the suite benchmarks, where they exist at that dimension.

- GloVe 6B 50d: none. Pennington et al.'s Table 2 (analogies) lists 100d and 300d GloVe rows,
  Table 3 (word similarity) only 300d vectors, and Figure 2(a) draws the 6B corpus's analogy
  accuracy against the vector size as a curve, without numbers. SimLex-999 (Hill et al. 2015)
  is later than the paper.
- word2vec GoogleNews 300d: Table 3 of Pennington et al. gives WordSim-353 for "CBOW*", the
  vectors from the word2vec website (these GoogleNews vectors, all 3 million words and phrases,
  100B tokens). The subsets here hold 26,423 and 13,013 of those words, so fewer pairs are
  scored. No analogy accuracy of these released vectors is printed in Mikolov et al. (2013a, b)
  or Pennington et al., and no SimLex-999 number is transcribed here.

Example:

```python
from papers.pennington2014 import reported
reported.PUBLISHED["word2vec-googlenews-300d-26k"]["wordsim353"].value   # 68.4
```
"""

from __future__ import annotations

from papers.registry import Reported

_CBOW_STAR = Reported(
    68.4, "test", "Pennington et al. 2014, Table 3 (CBOW*)", "wordsim353_spearman",
    "the word2vec website's GoogleNews vectors with all 3M words and phrases; Spearman ρ × 100")

#: vector set → benchmark (``analogy_total``, ``wordsim353``, ``simlex999``…) → published row.
PUBLISHED: dict[str, dict[str, Reported]] = {
    "glove-6b-50d": {},
    "word2vec-googlenews-300d-26k": {"wordsim353": _CBOW_STAR},
    "word2vec-googlenews-300d-13k": {"wordsim353": _CBOW_STAR},
}

