"""Reports: the path report of seed 000 §IV (Figure 1), as data, a web page, Excel and PDF."""
