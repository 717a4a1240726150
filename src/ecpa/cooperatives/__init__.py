"""Cooperatives (seed 004 §3): members who bring land, labour and capital, wages per
labour day, dividends from the year's surplus, a share for the village collective; the
four Gansu models as charter presets (``models.toml``, see ``service.presets``).

The presets and the parameters each sets:

* ``gansu-3.1`` Government + Farmer + Platform (Longnan): no pooled land or labour, so
  no wage and no land or labour shares; capital held for farmers earns by capital share.
* ``gansu-3.2`` Government + Cooperative + Farmer + Platform (YanHe): farmers join "with
  land, labour and other capital" and earn "dividends and wages" — wages, land, capital
  and labour shares; a 10 % reserve, since the paper finds their market risk poorly borne.
* ``gansu-3.3`` Enterprise + Cooperative + Farmer + Platform (PingBa): land and labour;
  the park keeps part of the income as the village collective development fund (10 %
  before dividends), households get land-share dividends and wages.
* ``gansu-3.4`` Government platform + Cooperatives + Farmers (HuiShui): the platform's
  purchase contracts give a market; wages, land and capital shares, a 5 % reserve.

The papers give no rates: the figures are defaults, each overridable per charter.
"""
