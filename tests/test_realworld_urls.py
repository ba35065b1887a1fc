"""Real-world Scene7 URLs from public storefront code, run through the app in process.

Each row is a URL found in public code (the search index's ``find_string`` over GitHub files; the
number is the index's file id, since that answer names no repository), in Adobe's reference
(``ref:`` + page) or a real idiom varied onto an asset that exists (``idiom:``). The host, company
and asset names are mapped onto the sample bucket (catalogs ``sample``, ``Shop``, ``locked``,
``marked`` and the default catalog; images rose 1600x1200, shoe 800x800, tulip 400x600 RGBA whose
record carries ``Modifier=bgc=eeeeee&wid=200``, the default image noimage 300x300); the query
string is kept byte for byte, ``&amp;`` and all.

Expectations come from the spec (/work/shared/spec) and Adobe's reference, not from a run:
  * DefaultPix 300,300 sizes a reply that names no wid/hei/scl (rendering.md §1.2); MaxPix
    2000,2000 makes a larger reply ``size_limit`` 403 (§1.1), except that ``dpr=`` shrinks to fit
    (§5 dpr; the reference's dpr page says the same).
  * A preset that is not in the catalog's macro file is ``bad_request`` 403 (protocol.md §3.5,
    catalogs.md §11 AMBIG-21: the reference is silent; a silently dropped preset would serve a
    wrong-sized image). ``$preset$=`` is that macro call (protocol/query.py) and ``%24preset%24`` a
    command name, which is never decoded (§3.3) and so is ignored like any unknown command (§3.9),
    as are cache busters (``ts=``, ``.v=``, ``icid=``) and ``amp;wid=`` left by HTML templating.
  * A missing image is replaced by the catalog's default image with only wid/hei/fmt/qlt kept
    (§12.5 mode 0); ``defaultImage=`` naming nothing that exists gives the original ``not_found``.
  * Request-type replies carry their format's type (§8.2: text/plain, text/javascript for json);
    errors are 403 bodies in the req= format (§12.3) that say only their title (ErrorDetail 0).

Sizes: ``WxH``; a dimension derived from the aspect ratio may differ by one pixel of rounding.
"""

# ruff: noqa: E501 - the corpus rows are URLs kept whole, one per line
from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from conftest import ROOT
from leaks import assert_no_leak
from PIL import Image

# source | url | status content-type [WxH | error kind]
CORPUS = r"""
35573372035 | /is/image/sample/rose:product-header-desktop?wid=830&hei=458&dpr=off | 200 image/jpeg 830x458
11179772980 | /is/image/sample/tulip?wid=750&hei=471&fmt=png-alpha | 200 image/png 750x471
5322537205 | /is/image/sample/rose | 200 image/jpeg 300x225
5322537205 | /is/image/Shop/SKU123 | 200 image/jpeg 300x225
23584018885 | /is/image/sample/rose?wid=640&hei=853 | 200 image/jpeg 640x853
51769683250 | /is/image/sample/rose?qlt=82&ts=1727010840630 | 200 image/jpeg 300x225
12563620 | /is/image/sample/tulip?wid=1280&hei=360&fmt=png-alpha | 200 image/png 1280x360
30422570605 | /is/image/sample/shoe?wid=1000&dpr=off | 200 image/jpeg 1000x1000
43704451285 | /is/image/sample/rose?$landscape1600$&fmt=png-alpha&fit=stretch,1 | 403 text/plain bad_request
43704451285 | /is/image/sample/rose?$thumb$&fmt=png-alpha&fit=stretch,1 | 200 image/png 160x160
17016503605 | /is/image/sample/rose?wid=780&hei=439&qlt=85,0&resMode=sharp | 200 image/jpeg 780x439
71476910080 | /is/image/sample/rose:introduction | 200 image/jpeg 300x300
21283791077 | /is/image/sample/shoe?$PDP-FULL-IMAGE$ | 403 text/plain bad_request
5936335652 | /is/image/sample/shoe?$pdpflexf2$&wid=880&hei=880 | 403 text/plain bad_request
5936335652 | /is/image/sample/shoe?$card$&wid=880&hei=880 | 200 image/jpeg 880x880
38946044162 | /is/image/sample/shoe?$PDP_PROD_IMAGE$ | 403 text/plain bad_request
30574003277 | /is/image/sample/shoe?$pdpflexf22x$&qlt=80&fmt=webp&wid=880&hei=880 | 403 text/plain bad_request
30574003277 | /is/image/sample/shoe?$Thumb$&qlt=80&fmt=webp&wid=880&hei=880 | 200 image/webp 880x880
17540814512 | /is/image/sample/shoe?$pdpflexf2$&qlt=80&fmt=webp&wid=440&hei=440 | 403 text/plain bad_request
25156709687 | /is/image/sample/rose?$pdp-gallery-ng$ | 403 text/plain bad_request
68313314072 | /is/image/sample/rose?$pdp$ | 403 text/plain bad_request
49226520917 | /is/image/sample/rose?$PDP_IMAGEGRID_ZOOM_MD$ | 403 text/plain bad_request
25106653474 | /is/image/sample/rose?wid=488&hei=488&fmt=pjpeg | 200 image/jpeg 488x488
22360620049 | /is/image/sample/shoe?wid=488&hei=488&fmt=pjpeg | 200 image/jpeg 488x488
19047371299 | /is/image/Shop/SKU456?wid=488&hei=488&fmt=pjpeg | 200 image/jpeg 488x488
37502089 | /is/image/sample/rose?qlt=70&wid=600&fmt=pjpeg | 200 image/jpeg 600x450
57151983949 | /is/image/sample/rose?wid=600&hei=600&fmt=pjpeg | 200 image/jpeg 600x600
11684853889 | /is/image/sample/shoe?wid=520&hei=520&fmt=pjpeg | 200 image/jpeg 520x520
31648030909 | /is/image/sample/rose?wid=325&hei=325&qlt=80&fmt=pjpeg | 200 image/jpeg 325x325
44369742560 | /is/image/sample/rose?wid=848&hei=848&fmt=jpeg&qlt=80&op_sharpen=0&resMode=bicub&op_usm=0.5,0.5,0,0&iccEmbed=0&layer=comp&.v=1454777389943 | 200 image/jpeg 848x848
37028265215 | /is/image/sample/rose.jpg?qlt=75&wid=376&hei=376&op_sharpen=1&resMode=sharp2&fmt=jpeg | 200 image/jpeg 376x376
17081240 | /is/image/sample/rose.tif?op_sharpen=1&wid=500&hei=613&fit=fit,1&$filtersm$ | 403 text/plain bad_request
17081240 | /is/image/sample/rose?op_sharpen=1&wid=500&hei=613&fit=fit,1&$thumb$ | 200 image/png 160x160
17081240 | /is/image/sample/rose?op_sharpen=1&wid=500&hei=613&fit=fit,1 | 200 image/jpeg 500x613
19802101280 | /is/image/sample/rose.jpg?wid=1000&hei=1000&op_sharpen=1 | 200 image/jpeg 1000x1000
70990420190 | /is/image/sample/rose?hei=600&op_sharpen=1&wid=600 | 200 image/jpeg 600x600
33616412735 | /is/image/sample/rose?wid=380&op_usm=0.5,2,10,0&fmt=webp&qlt=80,1&fit=constrain,0&op_sharpen=0&resMode=sharp2&iccEmbed=0&printRes=72 | 200 image/webp 380x285
8603529530 | /is/image/sample/rose?wid=685&hei=480&fmt=jpeg&qlt=95&op_sharpen=0&resMode=bicub&op_usm=0.5,0.5,0,0&iccEmbed=0&layer=comp&.v=1495224238528 | 200 image/jpeg 685x480
28326698105 | /is/image/sample/shoe?wid=240&hei=240&op_sharpen=1 | 200 image/jpeg 240x240
14246277882 | /is/image/sample/rose?wid=886&amp;hei=1070&amp;fmt=jpeg&amp;qlt=95&amp;op_usm=0.5,0.5&amp;.v=1599066777000 | 200 image/jpeg 886x665
15361270197 | /is/image/sample/rose?wid=1136&amp;hei=784&amp;fmt=p-jpg&amp;qlt=95&amp;.v=1698689812419 | 200 image/jpeg 1136x852
15361270197 | /is/image/sample/rose?wid=1136&hei=784&fmt=p-jpg&qlt=95&.v=1698689812419 | 200 image/jpeg 1136x784
8634060897 | /is/image/sample/rose?wid=445&amp;hei=445&amp;fmt=jpeg&amp;qlt=95&amp;op_sharpen=0&amp;resMode=bicub&amp;op_usm=0.5,0.5,0,0&amp;iccEmbed=0&amp;layer=comp&amp;.v=K7ik72 | 200 image/jpeg 445x334
22893285912 | /is/image/sample/shoe?wid=40&amp;hei=40&amp;fmt=jpeg&amp;qlt=90&amp;.v=1692895385156 | 200 image/jpeg 40x40
43977355287 | /is/image/sample/tulip?wid=470&amp;hei=556&amp;fmt=png-alpha&amp;.v=1566954990073 | 200 image/jpeg 470x705
4953639912 | /is/image/sample/tulip?wid=600&amp;hei=228&amp;fmt=png-alpha&amp;.v=c2tIV0Q0am5oYjZrUFl4cXkyL3BEdDdlSElFbjJtT1plQk5EWDZPQXZseTU2WVRXemprcUJnYm9QYzJ2Y3JrVTd4TGVpamVPVEJzTkdZd21wYUQrT1g1cU1XNzliRmYrYjh | 200 image/jpeg 600x900
1079786292 | /is/image/sample/rose?wid=940&amp;hei=1112&amp;fmt=jpeg&amp;qlt=80&amp;.v=1604021663000 | 200 image/jpeg 940x705
35141247447 | /is/image/sample/shoe?wid=470&amp;hei=556&amp;fmt=jpeg&amp;qlt=95&amp;.v=1604021663000 | 200 image/jpeg 470x470
5342199476 | /is/image/sample/shoes?req=set,json&id=1234 | 200 text/javascript
39872638571 | /is/image/sample/shoes?req=set,json&handler=s7Res&id=imgSet | 200 text/javascript
20107469246 | /is/image/sample/spring?req=set,json | 200 text/javascript
34066762466 | /is/image/sample/shoes?req=set,json | 200 text/javascript
34066762466 | /is/image/sample/shoes_IS?req=set,json | 403 text/javascript not_found
1317036144 | /is/image/sample/spin?req=set,json&locale=en | 200 text/javascript
20464485383 | /is/image//shoes?req=set,json,UTF-8 | 403 text/javascript not_found
20464485383 | /is/image/sample/shoes?req=set,json,UTF-8 | 200 text/javascript
71184738176 | /is/image/sample/rose?wid=3037&hei=2166&fit=constrain,1&qlt=95 | 403 text/plain size_limit
71184738176 | /is/image/sample/rose?req=imageprops | 200 text/plain
6780587380 | /is/image/sample/rose?$thumb$&req=resolve | 200 text/plain
6780587380 | /is/image/sample/rose?$thumb$&req=imageprops | 200 text/plain
18503125020 | /is/image/sample/rose?hei=1095&wid=950&resMode=sharp2&defaultImage=sample/shoe | 200 image/jpeg 950x1095
18503125020 | /is/image/sample/nosuchsku?hei=1095&wid=950&resMode=sharp2&defaultImage=sample/shoe | 200 image/jpeg 950x1095
30205256760 | /is/image/sample/tulip.png?fmt=png-alpha&pscan=auto&scl=1&hei=402&wid=619&qlt=100,1&resMode=sharp2&size=619,402&chrss=full | 200 image/png 619x402
9463118400 | /is/image/sample/rose.jpg?fmt=pjpg&pscan=auto&scl=1&wid=4384&hei=2671&qlt=100,1&resMode=sharp2&size=4384,2671&chrss=full&imwidth=5000 | 403 text/plain size_limit
24415194735 | /is/image/sample/rose.jpg?fmt=pjpg&pscan=auto&scl=1&wid=1600&hei=1200&qlt=100,0&resMode=sharp2&size=1600,1200&chrss=full&imwidth=5000 | 200 image/jpeg 1600x1200
48106764495 | /is/image/sample/rose?fmt=webp&qlt=70&resMode=sharp2&fit=crop,1&op_usm=0.6,0.6,8&wid=1760&hei=1760 | 200 image/webp 1760x1760
69465349350 | /is/image/sample/rose?qlt=80&resMode=sharp2&wid=1980 | 200 image/jpeg 1980x1485
43389905175 | /is/image/sample/shoe?fit=constrain,1&wid=800&hei=800&fmt=jpg&qlt=85,0&resMode=sharp2&op_usm=1.75,0.3,2,0 | 200 image/jpeg 800x800
14774903775 | /is/image/sample/rose?resMode=sharp2&op_usm=1.5,0.65,15,0&wid=1600&qlt=100&fit=constrain | 200 image/jpeg 1600x1200
66800288495 | /is/image/sample/rose?fmt=pjpeg&wid=1014&hei=396&bgcolor=F1F5F9&bgc=F1F5F9 | 200 image/jpeg 1014x396
21675255770 | /is/image/sample/SKU123?wid=100&hei=100&bgc=f8f8f8 | 200 image/jpeg 100x100
14020240655 | /is/image/sample/shoe?qlt=100&wid=1280&hei=1452&bgc=255,255,255&resMode=bisharp | 200 image/jpeg 1280x1452
24278844935 | /is/image/sample/rose?fmt=pjpeg&wid=330&bgcolor=FFFFFF&bgc=FFFFFF | 200 image/jpeg 330x248
4593688760 | /is/image/sample/shoe?fmt=pjpeg&wid=330&bgcolor=FFFFFF&bgc=FFFFFF | 200 image/jpeg 330x330
44467122215 | /is/image/sample/shoe?$dw_detail_main_lg$&bgc=f1f1f1&layer=1&bgcolor=f1f1f1&blendMode=mult&scale=10&wid=1600&hei=1600 | 403 text/plain bad_request
44467122215 | /is/image/sample/shoe?$zoom$&bgc=f1f1f1&layer=1&bgcolor=f1f1f1&blendMode=mult&scale=10&wid=1600&hei=1600 | 403 text/plain bad_request
7724739935 | /is/image/sample/rose+shoe?wid=5120&hei=3280&bgc=fafafa&trim=1&fmt=p-jpg&qlt=80&.v=SmNOTU80 | 403 text/plain not_found
7724739935 | /is/image/sample/rose?wid=1280&hei=820&bgc=fafafa&trim=1&fmt=p-jpg&qlt=80&.v=SmNOTU80 | 200 image/jpeg 1280x820
30209780135 | /is/image/sample/rose?rp=standard-0pad|pdpMainDesktop&scl=1&fmt=jpg&qlt=85&resMode=sharp2&cache=on,on&bgc=F0F0F0&wid=566&hei=708&size=566,708 | 200 image/jpeg 566x708
5439455086 | /is/image/sample/rose? | 200 image/jpeg 300x225
49087514776 | /is/image/sample/rose?$img_size_380x380$ | 403 text/plain bad_request
81088501 | /is/image/sample/rose.2400.jpg | 200 image/jpeg 300x300
71552610751 | /is/image/sample/rose?$product$ | 403 text/plain bad_request
25331130976 | /is/image/sample/rose?$Line-Overview-M1-M2-S$ | 403 text/plain bad_request
31294662916 | /is/image/sample/shoe | 200 image/jpeg 300x300
11425035181 | /is/image/sample/rose?$650_519_PNG$ | 403 text/plain bad_request
42645476551 | /is/image/sample/rose?$XlargeViewport100pct$ | 403 text/plain bad_request
46996667478 | /is/image/sample/rose?$large$=&fit=crop,1&align=1,1&wid=1600 | 403 text/plain bad_request
46996667478 | /is/image/sample/rose?$thumb$=&fit=crop,1&align=1,1&wid=1600 | 200 image/png 1600x160
44560556512 | /is/image/sample/shoe?$fxSharpen$=&wid=257&hei=257&dpr=on | 403 text/plain bad_request
44560556512 | /is/image/sample/shoe?$card$=&wid=257&hei=257&dpr=on | 200 image/jpeg 257x257
30128823154 | /is/image/sample/rose?%24large%24&fmt=webp&align=0,-1&fit=crop,1&ts=1676394980832&qlt=80&wid=1440&hei=660 | 200 image/webp 1440x660
68943320972 | /is/image/sample/tulip?fit=crop,1&fmt=webp-alpha&qlt=79&wid=1280&hei=1280&align=0.00,0.00&bfc=off | 200 image/webp 1280x1280
48521071054 | /is/image/sample/rose?$large$&cropN=0.0179687,0.0023447,0.8820313,0.9988277&align=0,-1&fit=crop,1&ts=1602665779628&wid=768 | 403 text/plain bad_request
48521071054 | /is/image/sample/rose?$zoom$&cropN=0.0179687,0.0023447,0.8820313,0.9988277&align=0,-1&fit=crop,1&ts=1602665779628&wid=768 | 200 image/jpeg 768x1200
54666719163 | /is/image/sample/rose?fmt=jpeg&qlt=70&resMode=sharp2&fit=crop,1&op_usm=0.6,0.6,8&wid=2000&hei=2500 | 403 text/plain size_limit
1529022393 | /is/image/sample/rose?fmt=jpeg&qlt=70&resMode=sharp2&fit=crop,1&op_usm=0.6,0.6,8&wid=2000&hei=1840 | 200 image/jpeg 2000x1840
7204116526 | /is/image/sample/shoe?fmt=jpeg&qlt=70&resMode=sharp2&fit=crop,1&op_usm=0.6,0.6,8&wid=2000&hei=1840 | 200 image/jpeg 2000x1840
34039288054 | /is/image/sample/rose?fit=crop,1&wid=1440&hei=720 | 200 image/jpeg 1440x720
26412888301 | /is/image/sample/24-May-US-%E2%80%93-AAPI-Heritage-Month-Assets_Intro_Media_Overlay?fmt=webp&qlt=70&resMode=sharp2&fit=crop,1&op_usm=0.6,0.6,8&wid=2000&hei=1125 | 200 image/webp 2000x1125
23122102786 | /is/image/sample/rose?$responsive-pjpg$&cache=on,on&wid=1920&hei=1920&fit=crop,1 | 403 text/plain bad_request
23122102786 | /is/image/sample/rose?$view$&cache=on,on&wid=1920&hei=1920&fit=crop,1 | 200 image/jpeg 1920x1920
23362966537 | /is/image/sample/tulip.png?scl=1&fmt=png8&icid=ft-connect-learn-more | 200 image/png 400x600
23362966537 | /is/image/sample/tulip?scl=1&fmt=png8&icid=ft-connect-learn-more | 200 image/png 200x600
35074697537 | /is/image/sample/rose?wid=960&fmt=png8 | 200 image/png 960x720
35074697537 | /is/image/sample/rose?wid=960&qlt=85&fmt=pjpg | 200 image/jpeg 960x720
33941287847 | /is/image/sample/tulip?resMode=sharp2&amp;fmt=png8-alpha&amp;wid=90&amp;hei=90 | 200 image/jpeg 200x300
11946313580 | /is/image/sample/tulip?fmt=png8-alpha&wid=1280&dpr=off | 200 image/png 1280x1920
49476644597 | /is/image/sample?src=ir{swRender/hd_livingroom6_day?wid=1280&req=object&opac=100&fmt=png8&object=wall&color=000000}&fmt=png8&bgColor=FFFFFF&op_invert=1 | 403 text/plain bad_request
49091589670 | /is/image/sample?src=ir(swRender/hd_livingroom6_day?wid=1280&req=object&opac=100&fmt=png8&object=wall&color=000000)&fmt=png8&bgColor=FFFFFF&op_invert=1 | 403 text/plain bad_request
6705572758 | /is/image/sample/tulip.png?ts=1646678856118&fmt=png8-alpha&dpr=off | 200 image/png 200x300
53889678626 | /is/image/sample/shoe?wid=720&hei=720&fit=constrain,1&qlt=85,1&op_usm=1,1,6,0 | 200 image/jpeg 720x720
34008867039 | /is/image/sample/rose?wid=720&hei=720&fit=constrain,1&qlt=85,1&op_usm=1,1,6,0 | 200 image/jpeg 720x540
21466538633 | /is/image/sample/rose?cache=on&wid=960&fmt=jpeg&qlt=85,1&resmode=sharp2&op_usm=1,1,5,0&defaultImage=Photo-Coming-Soon | 200 image/jpeg 960x720
3938564829 | /is/image/sample/nosuch?cache=on&wid=960&fmt=jpeg&qlt=85,1&resmode=sharp2&op_usm=1,1,5,0&defaultImage=Photo-Coming-Soon | 403 text/plain not_found
5956668892 | /is/image/sample/nosuch?cache=on&wid=480&fmt=jpeg&qlt=85,1&resmode=sharp2&op_usm=1,1,5,0&defaultImage=sample/tulip | 200 image/jpeg 480x720
1350734621 | /is/image/sample/rose?wid=540&fit=constrain,0&op_sharpen=1&resMode=sharp2&qlt=85,1 | 200 image/jpeg 540x405
41952161960 | /is/image/sample/shoe?wid=800&hei=800&fmt=jpg&qlt=85,1&op_sharpen=0&resMode=sharp2&op_usm=1,1,1,0 | 200 image/jpeg 800x800
9871610486 | /is/image/sample/shoe?wid=400&hei=400&fmt=jpg&qlt=85,1&op_sharpen=0&resMode=sharp2&op_usm=1,1,1,0 | 200 image/jpeg 400x400
22288719052 | /is/image/sample/rose?wid=800&fmt=jpeg&qlt=85,1&pscan=auto&op_sharpen=0&resMode=sharp2&op_usm=1,0.65,6,0 | 200 image/jpeg 800x600
17827934214 | /is/image/sample/tulip.png?bgColor=0,0,0,0&fmt=png-alpha&hei=528&resMode=sharp&qlt=85,1&op_sharpen=1 | 200 image/png 352x528
57061992441 | /is/image/sample/rose%3AClassic-Hor?fit=constrain&wid=1336 | 200 image/jpeg 1336x1336
38484750159 | /is/image/sample/rose.jpg?fit=constrain&wid=640 | 200 image/jpeg 640x480
65845160568 | /is/image/sample/rose?fit=constrain&wid=1600&qlt=90 | 200 image/jpeg 1600x1200
56132321763 | /is/image/sample/rose%3AFeature-Hor?fit=constrain&wid=1920 | 200 image/jpeg 1920x1920
58669272272 | /is/image/sample/shoe?fit=constrain&wid=1920 | 200 image/jpeg 800x800
62730450641 | /is/image/sample/rose?fit=constrain&wid=1300 | 200 image/jpeg 1300x975
58910052734 | /is/image/sample/rose?fit=constrain&wid=856 | 200 image/jpeg 856x642
1394485737 | /is/image/sample/rose?fit=constrain&wid=640&hei=360 | 200 image/jpeg 480x360
8242648310 | /is/image/sample/rose?scl=1&resMode=sharp2&op_usm=1.5,0.65,15,0&qlt=90&fit=constrain&wid=2136&hei=1200 | 403 text/plain size_limit
29935688849 | /is/image/sample/rose?req=exists,json | 200 text/javascript
21335837579 | /is/image/sample/nosuch_RHR?req=exists,json | 200 text/javascript
21335837579 | /is/image/sample/tulip?wid=1500&fmt=png-alpha | 403 text/plain size_limit
69722475975 | /is/image/sample/rose?req=exists | 200 text/plain
45732641746 | /is/content/sample/badge?fmt=png-alpha | 200 image/svg+xml
32617765201 | /is/content/sample/TH%20SP25%20MSW%20TRAILER_SP25_1920x1080_C5101 | 403 text/plain not_found
71196566431 | /is/content/sample/size-chart | 200 application/json
6756032011 | /is/content/sample/size-chart?req=exists | 200 text/plain
2186745196 | /is/content/sample/badge | 200 image/svg+xml
37667303153 | /is/image/sample/Belmont%20Reunion%2003?qlt=85&wid=480&ts=1742942286073&dpr=on,2.625 | 200 image/jpeg 480x480
37667303153 | /is/image/sample/rose?qlt=85&wid=480&ts=1742942286073&dpr=on,2.625 | 200 image/jpeg 1260x945
71226768877 | /is/image/sample/rose?$ProdListProd$&dpr=on,1 | 403 text/plain bad_request
71226768877 | /is/image/sample/rose?$thumb$&dpr=on,1 | 200 image/png 160x160
2619295747 | /is/image/sample/rose:rad-16x9?ts=1749490438465&fit=constrain&dpr=on,0.8999999761581421&wid=480 | 200 image/jpeg 480x480
2619295747 | /is/image/sample/rose?ts=1749490438465&fit=constrain&dpr=on,0.8999999761581421&wid=480 | 200 image/jpeg 432x324
54207775222 | /is/image/sample/rose?&dpr=on,2 | 200 image/jpeg 300x225
4470196236 | /is/image/sample/shoe?wid=414&hei=414&dpr=on | 200 image/jpeg 414x414
4238586909 | /is/image/sample/Teal+Blue?&dpr=on,2 | 200 image/jpeg 300x300
12400756297 | /is/image/sample/shoe?&dpr=on,2 | 200 image/jpeg 300x300
61935976808 | /is/image/sample/tulip?fmt=png-alpha&dpr=on%2C1.25&wid=960&hei=540 | 200 image/png 1200x675
52449562356 | /is/image/sample/rose?wid=1862&hei=1047&dpr=on,2&qlt=85&resMode=sharp2&op_usm=0.5,0.3,2,0&iccEmbed=true&icc=sRGB | 200 image/jpeg 2000x1125
52449562356 | /is/image/sample/rose?wid=931&hei=523&dpr=on,2&qlt=85&resMode=sharp2&op_usm=0.5,0.3,2,0&iccEmbed=true&icc=sRGB | 200 image/jpeg 1862x1046
14486138280 | /is/image/sample/?layer=0&wid=1920&hei=640&fmt=jpg&src=is{sample/shoe?wid=1920&hei=640}&layer=1&src=is{sample/rose?wid=920&hei=600&$hybris-pdp-hero$} | 403 text/plain bad_request
14486138280 | /is/image/sample/?layer=0&wid=1920&hei=640&fmt=jpg&src=is{sample/shoe?wid=1920&hei=640}&layer=1&src=is{sample/rose?wid=920&hei=600&$thumb$} | 200 image/jpeg 1920x640
29948118930 | /is/image/sample/tulip?bgc=255,255,255 | 200 image/jpeg 200x300
29948118930 | /is/image/sample/tulip?&layer=1&src=shoe&size=8500,8500&layer=2&src=tulip | 403 text/plain size_limit
633595772 | /is/image/sample/rose?&layer=1&src=sample/shoe&size=2975;1917&pos=1843;1195&hide=0&wid=600&scl=5 | 403 text/plain bad_request
54556338423 | /is/image/sample/rose?template=frame&wid=600&hei=600 | 200 image/jpeg 600x600
54556338423 | /is/image/sample/frame?wid=600&hei=600&layer=1&src=sample/tulip | 403 text/plain bad_request
26030805772 | /is/image/sample/tulip?wid=212&hei=292&fmt=png-alpha&.v=1503618523038 | 200 image/png 212x292
45327987562 | /is/image/sample/rose?wid=540&hei=540&align=0%2C-1&fmt=jpeg&qlt=90&fit=constrain&.v=1645065732688 | 200 image/jpeg 540x405
53315160142 | /is/image/sample/rose?wid=904&hei=840&fmt=jpeg&qlt=90&.v=1708367688034 | 200 image/jpeg 904x840
6014076547 | /is/image/sample/tulip?wid=940&hei=1112&fmt=png-alpha&.v=1631220221000 | 200 image/png 940x1112
102140797 | /is/image/sample/shoe?wid=630&hei=630&fmt=png-alpha | 200 image/png 630x630
12154244107 | /is/image/sample/SKU123?wid=488&hei=488&fmt=pjpeg | 200 image/jpeg 488x488
19079889952 | /is/image/sample/rose%20Front%20view.png?wid=656&hei=656 | 200 image/jpeg 656x656
31404454762 | /is/image/sample/rose?wid=1144&hei=1144&fmt=jpeg&qlt=90&.v=1660803972361 | 200 image/jpeg 1144x1144
28029623337 | /is/image/sample/rose?$primaryshotPreset$&fmt=png-alpha&wid=515&hei=515&trf=trim | 403 text/plain bad_request
28029623337 | /is/image/sample/rose?$thumb$&fmt=png-alpha&wid=515&hei=515&trf=trim | 200 image/png 515x515
7456161898 | /is/image/sample/rose?$Canon-Responsive$&fmt=png-alpha&wid=675 | 403 text/plain bad_request
61599509313 | /is/image/sample/tulip.png?qlt=90,0&resMode=sharp2&op_usm=1.75,0.3,2,0&fmt=png-alpha&wid=668&hei=442 | 200 image/png 668x442
30336837247 | /is/image/sample/W2534%20-%20T_L%20Tech%20_%20Audio?$cms-max-image-threshold$&fmt=png-alpha&wid=352&fit=hfit%2C1 | 403 text/plain bad_request
30336837247 | /is/image/sample/rose?fmt=png-alpha&wid=352&fit=hfit%2C1 | 200 image/png 352x264
26864063229 | /is/image/sample/rose?$QC_Responsive$&fmt=png-alpha&wid=500 | 403 text/plain bad_request
35089812031 | /is/image/sample/shoe?$QC_Responsive$&fmt=png-alpha&wid=640 | 403 text/plain bad_request
10530453050 | /is/image/sample/shoe?resMode=sharp2&fmt=png-alpha&wid=1000 | 200 image/png 1000x1000
22238147109 | /is/image/sample/tulip.png?fit=constrain&fmt=png-alpha&wid=2875 | 200 image/png 400x600
45429661659 | /is/image/sample/shoe?template=frame&$bg=ffffff&fmt=png-alpha&wid=250&hei=138&op_sharpen=1 | 200 image/png 250x138
37149429126 | /is/image/sample/tulip?$S7Product$&fmt=png-alpha | 403 text/plain bad_request
16819467945 | /is/image/sample/tulip?$Thumb$&fmt=png-alpha | 200 image/png 160x160
24148412 | /is/image/sample/rose?$s7product$ | 403 text/plain bad_request
67137106925 | /is/image/sample/rose?fmt=webp&wid=1200 | 200 image/webp 1200x900
67137106925 | /is/image/sample/rose?fmt=jpg&wid=1200 | 200 image/jpeg 1200x900
46504229780 | /is/image/sample/shoe?fmt=webp&qlt=70&resMode=sharp2&fit=crop,1&op_usm=0.6,0.6,8&wid=1760&hei=1760 | 200 image/webp 1760x1760
60622812920 | /is/image/sample/rose?fmt=webp&wid=1920 | 200 image/webp 1920x1440
1416568341 | /is/image/sample/rose:16by9?fmt=webp&op_usm=1.75,0.3,2,0&resMode=sharp2&iccEmbed=true&icc=sRGB&dpr=on,1.3&wid=1459&hei=820&qlt=80 | 200 image/webp 1459x820
1416568341 | /is/image/sample/rose?fmt=webp&op_usm=1.75,0.3,2,0&resMode=sharp2&iccEmbed=true&icc=sRGB&dpr=on,1.3&wid=1459&hei=820&qlt=80 | 200 image/webp 1897x1066
53110048220 | /is/image/sample/shoe.jpg?fmt=png-alpha&pscan=auto&scl=1&hei=402&wid=536&qlt=100,1&resMode=sharp2&size=536,402&chrss=full | 200 image/png 536x402
8863225640 | /is/image/sample/shoe.jpg?fmt=pjpg&pscan=auto&scl=1&wid=4277&hei=3022&qlt=100,1&resMode=sharp2&size=4277,3022&chrss=full&imwidth=5000 | 403 text/plain size_limit
17236828520 | /is/image/sample/rose.jpg?fmt=pjpg&pscan=auto&scl=1&hei=402&wid=402&qlt=85,0&resMode=sharp2&op_usm=1.75,0.3,2,0&size=402,402 | 200 image/jpeg 402x402
26134790705 | /is/image/sample/shoe?fmt=pjpg&pscan=auto&scl=1&wid=3319&hei=2405&qlt=100,1&resMode=sharp2&size=3319,2405&chrss=full&imwidth=5000 | 403 text/plain size_limit
33621026734 | /is/image/sample/rose?fmt=jpeg&qlt=90,0&resMode=sharp&op_usm=.1,0,0,0&crop=0,0,0,0&wid=540&hei=540 | 200 image/jpeg 540x540
22294076329 | /is/image/sample/rose?wid=1280&fmt=jpeg&op_usm=1,1,5,0&resMode=sharp2&fit=crop&qlt=75,0 | 200 image/jpeg 1280x960
66606883759 | /is/image/sample/rose?wid=1728&qlt=80%2C0&resMode=sharp2&op_usm=0.9%2C1.0%2C8%2C0&iccEmbed=0&fmt=webp | 200 image/webp 1728x1296
28569263914 | /is/image/sample/rose?wid=1440&op_usm=0.5,2,10,0&fmt=webp&qlt=90,1&fit=constrain,0&op_sharpen=0&resMode=sharp2&iccEmbed=0&printRes=72 | 200 image/webp 1440x1080
3561785749 | /is/image/sample/shoe?wid=1080&op_usm=0.5,2,10,0&fmt=webp&qlt=80,1&fit=constrain,0&op_sharpen=0&resMode=sharp2&iccEmbed=0&printRes=72 | 200 image/webp 800x800
41129936209 | /is/image/sample/rose?wid=452&hei=420&fmt=jpeg&qlt=95&op_usm=0.5,0.5&.v=1587460269141 | 200 image/jpeg 452x420
114842719 | /is/image/sample/shoe?wid=1000&hei=1000&fmt=jpeg&qlt=95&op_sharpen=0&resMode=bicub&op_usm=0.5,0.5,0,0&iccEmbed=0&layer=comp&.v=1465509119024 | 200 image/jpeg 1000x1000
ref:r-mask | /is/image/sample/rose?wid=500&layer=0&maskUse=invert&op_blur=20&layer=1&src=sample/rose | 200 image/jpeg 500x375
ref:r-layer | /is/image/sample?layer=0&src=rose&layer=1&src=shoe&layer=2&src=tulip&wid=200 | 200 image/jpeg 200x150
ref:r-origin | /is/image/sample/rose?scl=1&size=300,300&origin=-0.5,-0.5%20&layer=1&src=sample/tulip&origin=-0.5,-0.5&rotate=-30&color=ffffff40 | 403 text/plain bad_request
ref:r-origin | /is/image/sample/rose?scl=1&size=300,300&origin=-0.5,-0.5&layer=1&src=sample/tulip&origin=-0.5,-0.5&rotate=-30&color=ffffff40 | 403 text/plain bad_request
ref:r-origin | /is/image/sample/rose?scl=1&size=300,300&originN=-0.5,-0.5&layer=1&src=sample/tulip&originN=-0.5,-0.5&rotate=-30&color=ffffff40 | 200 image/jpeg 300x225
ref:r-extend | /is/image/sample/rose?cropN=.2,.3,.8,.9&extend=5,5,5,5&bgColor=255,0,0 | 200 image/jpeg 300x253
ref:r-extend | /is/image/sample/rose?size=200,0&extend=0,30,0,0&origin=0,0 | 200 image/jpeg 200x180
ref:r-resmode | /is/image/sample/tulip?fmt=tif-alpha,,lzw&resMode=sharp2&wid=1800 | 403 text/plain size_limit
ref:r-resmode | /is/image/sample/tulip?fmt=tif-alpha,,lzw&resMode=sharp2&wid=1000 | 200 image/tiff 1000x1500
ref:r-is-http-command-macros | /is/image/sample/rose?wid=240&fmt=jpeg&qlt=85&op_usm=5,2&bgc=200,200,200&align=-1,-1 | 200 image/jpeg 240x180
ref:r-is-http-command-macros | /is/image/sample/rose?$view$&wid=480 | 200 image/jpeg 480x360
ref:r-is-http-command-macros | /is/image/sample/rose?wid=480&$view$ | 200 image/jpeg 240x180
ref:c-ir-http-encoding | /is/image/sample/rose?template=layered&$text=rate%26weight%3D85%25%2027%23 | 200 image/jpeg 300x300
ref:r-imageprops | /is/image/sample/tulip.png?req=imageprops | 200 text/plain
ref:r-catalogprops | /is/image/sample?req=catalogprops | 200 text/plain
ref:helpx-presets-imageformats-macros | /is/image/sample/rose?wid=400&hei=400&fmt=jpeg&qlt=75,0&op_sharpen=0&resMode=bicub&op_usm=0.0,0.0,0,0&iccEmbed=0 | 200 image/jpeg 400x400
ref:r-bgcolor | /is/image/sample/tulip.png?size=200,200&bgColor=191,120,241 | 200 image/jpeg 133x200
ref:r-blendmode | /is/image/sample/rose?layer=1&src=sample/tulip&opac=80&blendMode=dissolve | 200 image/jpeg 300x225
ref:r-rect | /is/image/sample/rose?wid=1600&hei=1200&rect=0,0,800,600 | 200 image/jpeg 800x600
ref:r-crop | /is/image/sample/rose?crop=100,100,800,600 | 200 image/jpeg 300x225
ref:r-dpr | /is/image/sample/rose?wid=816&hei=500&dpr=on,2 | 200 image/jpeg 1632x1000
ref:r-dpr | /is/image/sample/rose?wid=816&hei=500&dpr=on,4 | 200 image/jpeg 2000x1225
ref:r-dpr | /is/image/sample/rose?dpr=on,3 | 200 image/jpeg 300x225
idiom:WID | /is/image/sample/rose?WID=300&HEI=200&FMT=png | 200 image/png 300x200
idiom:trailing-amp | /is/image/sample/rose?wid=300& | 200 image/jpeg 300x225
idiom:double-amp | /is/image/sample/rose?&&wid=300&&hei=100&& | 200 image/jpeg 300x100
idiom:empty-wid | /is/image/sample/rose?wid=&hei=200 | 403 text/plain bad_request
idiom:hei-alone | /is/image/sample/rose?hei=300 | 200 image/jpeg 400x300
idiom:scl | /is/image/sample/rose?scl=4 | 200 image/jpeg 400x300
idiom:scl-wid | /is/image/sample/rose?scl=2&wid=300&hei=300 | 200 image/jpeg 300x300
idiom:last-wins | /is/image/sample/rose?wid=200&wid=400 | 200 image/jpeg 400x300
idiom:preset-then-override | /is/image/sample/rose?$thumb$&wid=160&hei=120 | 200 image/png 160x120
idiom:override-then-preset | /is/image/sample/rose?wid=120&$thumb$ | 200 image/png 160x160
idiom:cache-off | /is/image/sample/rose?wid=200&cache=off | 200 image/jpeg 200x150
idiom:bgc-0x | /is/image/sample/tulip?wid=300&hei=300&bgc=0xffffff | 200 image/jpeg 300x300
idiom:fmt-jpeg-of-alpha | /is/image/sample/tulip?wid=200&fmt=jpeg | 200 image/jpeg 200x300
idiom:fmt-webp-alpha | /is/image/sample/tulip?wid=200&fmt=webp-alpha | 200 image/webp 200x300
idiom:fmt-gif-alpha | /is/image/sample/tulip?wid=200&fmt=gif-alpha | 200 image/gif 200x300
idiom:fmt-avif | /is/image/sample/rose?wid=200&fmt=avif | 200 image/avif 200x150
idiom:fmt-unknown | /is/image/sample/rose?wid=200&fmt=bmp | 403 text/plain bad_request
idiom:fit-constrain1 | /is/image/sample/shoe?wid=1000&hei=1000&fit=constrain,1 | 200 image/jpeg 1000x1000
idiom:fit-constrain0 | /is/image/sample/shoe?wid=1000&hei=1000&fit=constrain,0 | 200 image/jpeg 800x800
idiom:fit-fit | /is/image/sample/rose?wid=400&hei=400&fit=fit | 200 image/jpeg 400x400
idiom:fit-crop | /is/image/sample/rose?wid=400&hei=400&fit=crop | 200 image/jpeg 400x400
idiom:fit-stretch | /is/image/sample/rose?wid=400&hei=400&fit=stretch | 200 image/jpeg 400x400
idiom:fit-hfit | /is/image/sample/rose?wid=400&hei=400&fit=hfit | 200 image/jpeg 400x400
idiom:fit-wrap | /is/image/sample/rose?wid=400&hei=400&fit=wrap | 200 image/jpeg 533x400
idiom:fit-tmb | /is/image/sample/rose?req=tmb&wid=100&fit=crop | 403 text/plain bad_request
idiom:size | /is/image/sample/rose?size=400,400 | 200 image/jpeg 300x225
idiom:align | /is/image/sample/rose?wid=400&hei=400&align=-1,-1 | 200 image/jpeg 400x400
idiom:posN | /is/image/sample/rose?layer=1&src=sample/tulip&size=100,150&posN=0.4,0.4 | 200 image/jpeg 300x225
idiom:req-props | /is/image/sample/rose?req=props&wid=100&fmt=png | 200 text/plain
idiom:req-props-json | /is/image/sample/rose?req=props,json&id=r7&handler=cb1 | 200 text/javascript
idiom:req-props-missing | /is/image/sample/nosuch?req=props,json | 403 text/javascript not_found
idiom:req-imageset | /is/image/sample/shoes?req=imageset | 200 text/plain
idiom:req-imageset-json | /is/image/sample/shoes?req=imageset,json | 200 text/javascript
idiom:imageset-override | /is/image/sample?imageSet={sample/rose,sample/shoe}&req=set,json | 200 text/javascript
idiom:req-userdata | /is/image/sample/rose?req=userdata | 200 text/plain
idiom:req-exists-missing | /is/image/sample/nosuch?req=exists | 200 text/plain
idiom:req-exists-file | /is/image/sample/rose.jpg?req=exists | 200 text/plain
idiom:missing-default | /is/image/sample/nosuch?wid=200 | 200 image/jpeg 200x200
idiom:missing-shop | /is/image/Shop/nosuch?wid=200&hei=200 | 200 image/jpeg 200x200
idiom:shop-sku | /is/image/Shop/SKU123?$thumb$ | 200 image/jpeg 100x100
idiom:shop-error-image | /is/image/Shop/SKU456?wid=abc&hei=200 | 200 image/jpeg 200x200
idiom:defaultimage-empty | /is/image/sample/nosuch?wid=200&defaultImage= | 403 text/plain not_found
idiom:space-in-id | /is/image/sample/rose%20?wid=200 | 200 image/jpeg 200x200
idiom:tif-ext | /is/image/sample/rose.tif?wid=200 | 200 image/jpeg 200x200
idiom:default-catalog | /is/image/rose?wid=200 | 200 image/jpeg 200x200
idiom:locked | /is/image/locked/rose?wid=200 | 403 text/plain refused
idiom:locked-ok | /is/image/locked/rose?wid=200&4a1f | 200 image/jpeg 200x150
idiom:marked | /is/image/marked/rose?wid=400 | 200 image/jpeg 400x300
idiom:maxpix | /is/image/sample/rose?wid=4000 | 403 text/plain size_limit
idiom:maxpix-equal | /is/image/sample/rose?wid=2000 | 200 image/jpeg 2000x1500
idiom:op_usm-reals | /is/image/sample/rose?wid=200&op_usm=1.75,1.0,6.0 | 200 image/jpeg 200x150
idiom:plus-in-value | /is/image/sample/rose?template=layered&$text=Hello+World | 200 image/jpeg 300x300
idiom:template-vars | /is/image/sample/rose?template=frame&$size=120&$bg=ff0000 | 200 image/jpeg 120x120
idiom:bare | /is/image | 200 text/plain
idiom:bare-slash | /is/image/ | 200 text/plain
idiom:dpr-bare-number | /is/image/sample/rose?wid=300&dpr=2 | 403 text/plain bad_request
idiom:network | /is/image/sample/rose?wid=300&network=off | 200 image/jpeg 300x225
idiom:bfc | /is/image/sample/rose?wid=300&bfc=on | 200 image/jpeg 300x225
idiom:flip-rotate | /is/image/sample/rose?wid=300&flip=lr&rotate=90 | 200 image/jpeg 300x400
idiom:req-tmb | /is/image/sample/rose?req=tmb | 200 image/jpeg 100x100
idiom:req-mask | /is/image/sample/tulip?req=mask&fmt=png | 200 image/png 200x300
idiom:iccEmbed | /is/image/sample/rose?wid=200&iccEmbed=1 | 200 image/jpeg 200x150
idiom:unknown-req | /is/image/sample/rose?req=bogus | 403 text/plain bad_request
idiom:req-validate | /is/image/sample/rose?req=validate&wid=200 | 200 text/plain
idiom:req-validate-bad | /is/image/sample/rose?req=validate&wid=abc | 403 text/plain bad_request
idiom:crop-open-size | /is/image/sample/rose?crop=800,600,0,0&scl=1 | 200 image/jpeg 800x600
idiom:crop-nothing-left | /is/image/sample/rose?crop=1600,0,0,0 | 403 text/plain bad_request
idiom:crop-negative-size | /is/image/sample/rose?crop=0,0,-5,10 | 403 text/plain bad_request
idiom:shop-unknown-preset | /is/image/Shop/SKU456?$pdp$ | 200 image/jpeg 300x300
idiom:shop-unknown-preset | /is/image/Shop/SKU456?$pdp$&wid=200&hei=100 | 200 image/jpeg 200x100
idiom:shop-unknown-preset | /is/image/Shop/SKU456?$pdp$&req=props,json | 403 text/plain bad_request
idiom:crop-fractional | /is/image/sample/rose?crop=0.1,0.1,0.8,0.8 | 403 text/plain bad_request
idiom:asset-is-suffix | /is/image/sample/rose_is? | 200 image/jpeg 300x300
idiom:pct20-in-value | /is/image/sample/rose?template=layered&$text=Hello%20World | 200 image/jpeg 300x300
idiom:DPR-upper | /is/image/sample/rose?WID=400&DPR=on,2 | 200 image/jpeg 800x600
idiom:amp-on-shop | /is/image/Shop/SKU123?wid=300&amp;hei=100 | 200 image/jpeg 300x225
idiom:comment | /is/image/sample/rose?wid=200&.note=a=b | 200 image/jpeg 200x150
"""


@dataclass(frozen=True)
class Case:
    source: str
    url: str
    status: int
    media_type: str
    size: tuple[int, int] | None
    kind: str | None


def _cases() -> list[Case]:
    cases = []
    for line in CORPUS.strip().splitlines():
        source, url, expect = (part.strip() for part in line.split(" | "))
        status, media_type, *rest = expect.split()
        size = kind = None
        if rest and "x" in rest[0] and rest[0].replace("x", "").isdigit():
            w, h = rest[0].split("x")
            size = (int(w), int(h))
        elif rest:
            kind = rest[0]
        cases.append(Case(source, url, int(status), media_type, size, kind))
    return cases


CASES = _cases()
_PIL_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "TIFF": "image/tiff"}


def test_the_corpus_is_large_and_distinct():
    real = {c.source for c in CASES if not c.source.startswith(("ref:", "idiom:"))}
    assert len(real) >= 150  # public storefront files behind the rows
    assert len(CASES) >= 290
    assert len({c.url for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{i:03d}-{c.source}" for i, c in enumerate(CASES)])
def test_real_world_url(client, case):
    r = client.get(case.url)
    assert r.status_code < 500, (case.url, r.text[:200])
    assert_no_leak(r, secrets=(str(ROOT),), where=case.url)
    media_type = r.headers["content-type"].split(";")[0]
    assert (r.status_code, media_type) == (case.status, case.media_type), (case.url, r.text[:200])
    if r.status_code >= 400:
        assert r.headers["x-is-error"] == case.kind
        assert "no-store" in r.headers["cache-control"]  # errors are never cached (§11.3)
        return
    if case.media_type.startswith("image/") and case.media_type != "image/svg+xml":
        image = Image.open(io.BytesIO(r.content))
        if image.format in _PIL_TYPES:  # the body is what the header says
            assert _PIL_TYPES[image.format] == media_type
        if case.size is not None:
            (w, h), (ew, eh) = image.size, case.size
            assert abs(w - ew) <= 1 and abs(h - eh) <= 1, (case.url, image.size, case.size)


def test_amp_left_by_html_templating_is_an_unknown_command(client):
    """``&amp;hei=`` reaches the server as a command named ``amp;hei``: not a command name (§3.1),
    so ignored like any unknown command (§3.9); the reply is the ``wid=`` alone."""
    html = client.get("/is/image/sample/rose?wid=400&amp;hei=100&amp;fmt=png")
    plain = client.get("/is/image/sample/rose?wid=400")
    assert html.headers["content-type"] == "image/jpeg"
    assert html.content == plain.content


def test_a_preset_written_as_an_empty_key_is_the_preset(client):
    """``?$card$=`` (a query builder's ``{"$card$": ""}``) is the macro call ``?$card$``."""
    called = client.get("/is/image/sample/shoe?$card$=&wid=257")
    plain = client.get("/is/image/sample/shoe?$card$&wid=257")
    assert called.status_code == 200 and called.content == plain.content
    # Not a variable: ``$card$=`` defines nothing a later ``$card$`` reference could pick up.
    assert client.get("/is/image/sample/rose?$card$=&$x=1&wid=$card$").status_code == 403


def test_p_jpg_is_progressive_jpeg(client):
    """Apple's store front sends ``fmt=p-jpg``: the progressive JPEG that ``pjpeg`` names."""
    alias = client.get("/is/image/sample/rose?wid=200&fmt=p-jpg")
    pjpeg = client.get("/is/image/sample/rose?wid=200&fmt=pjpeg")
    assert alias.headers["content-type"] == "image/jpeg" and alias.content == pjpeg.content
    assert Image.open(io.BytesIO(alias.content)).info.get("progressive") == 1


def test_an_unknown_preset_on_a_catalog_with_an_error_image_shows_it(client):
    """Shop has ErrorImage=onError: an image request (no req=, or img/tmb) whose preset is not in
    the catalog gets the error image, 200 and never cached (§12.4), like any other bad request;
    other request types answer the text error, the format step not being reached (§2 step 9)."""
    for url in ("/is/image/Shop/SKU456?$pdp$&wid=200", "/is/image/Shop/SKU456?wid=abc"):
        r = client.get(url)
        assert (r.status_code, r.headers["content-type"], r.headers["x-is-error"]) == (200, "image/jpeg", "bad_request")
        assert "no-store" in r.headers["cache-control"]
    props = client.get("/is/image/Shop/SKU456?$pdp$&req=props,json")
    assert (props.status_code, props.headers["content-type"].split(";")[0]) == (403, "text/plain")
