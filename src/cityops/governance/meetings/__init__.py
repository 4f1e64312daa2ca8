"""The four meetings (四会): village 说事评理会, township 综治联席会, county 评议会商会, city 分析研判会."""
