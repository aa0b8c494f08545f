#!/usr/bin/env python3
"""Build rules/reference/mcc.csv: every ISO 18245 merchant category code
with its China fee class and a daytime flag.

Sources (see rules/reference/README.md):
- codes and English descriptions: the ISO 18245 list and the Visa and
  Mastercard lists of the `iso18245` package 1.4.1 (MIT licence, copied to
  source/ with its licence); a description from the ISO list wins;
- fee_class: 发改价格〔2016〕557号 and the card schemes' MCC groups (below);
- daytime: whether a business of the code is, as a rule, closed between
  00:00 and 05:00 (an inference, listed below), read by SUS-TIME-01.

Run from the repository root: python3 rules/reference/mcc_table.py
"""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# 557号 减免类 (issuer and network fees waived): non-profit hospitals,
# education, social welfare, elderly care, charities; UnionPay's public
# service group adds government payments. Mark: V (classes) / I (codes).
WAIVED = {
    "8062": "医院 Hospitals",
    "8211": "中小学 Elementary and secondary schools",
    "8220": "大学 Colleges and universities",
    "8241": "函授学校 Correspondence schools",
    "8244": "商业学校 Business and secretarial schools",
    "8249": "职业学校 Vocational and trade schools",
    "8299": "其他教育 Schools and educational services",
    "8351": "托儿 Child care services",
    "8050": "养老护理 Nursing and personal care facilities",
    "8398": "慈善机构 Charitable and social service organizations",
    "9211": "法院费用 Court costs",
    "9222": "罚款 Fines",
    "9311": "缴税 Tax payments",
    "9399": "政府服务 Government services",
}
# 557号 优惠类: supermarkets, warehouse stores, water/power/gas bills,
# fuel, transport tickets.
DISCOUNT = {
    "5411": "超市 Supermarkets",
    "5300": "大型仓储式卖场 Wholesale clubs",
    "4900": "公共事业缴费 Utilities",
    "5541": "加油站 Service stations",
    "5542": "自助加油 Automated fuel dispensers",
    "4111": "市内交通 Local commuter transport",
    "4112": "铁路客运 Passenger railways",
    "4131": "长途客运 Bus lines",
    "4511": "航空客运 Airlines",
    "4784": "路桥通行费 Tolls and bridge fees",
}
# Codes whose businesses trade at night as a matter of course (or are
# online): daytime = false. Everything else is taken to be closed between
# 00:00 and 05:00. Mark: I.
NIGHT = set(
    """4111 4112 4121 4131 4411 4457 4468 4511 4582 4722 4784 4789 4812 4814 4816 4821 4829 4899 4900
    5262 5309 5411 5499 5541 5542 5811 5812 5813 5814 5815 5816 5817 5818 5921 5960 5961 5962 5963 5964 5965
    5966 5967 5968 5969 5993 6010 6011 6012 6050 6051 6211 6300 6529 6530 6531 6532 6533 6534 6535 6536
    6537 6538 6540 7011 7012 7032 7033 7273 7297 7298 7372 7375 7399 7512 7513 7519 7523 7524 7800 7801
    7802 7829 7832 7841 7911 7922 7929 7932 7933 7941 7991 7992 7993 7994 7995 7996 7997 7998 7999 8062
    8099 9399 9402 9405 9950""".split()
)
# Chinese names for the codes merchants in China use most.
ZH = {
    **WAIVED,
    **DISCOUNT,
    "5311": "百货商店 Department stores",
    "5331": "杂货店 Variety stores",
    "5399": "综合零售 General merchandise",
    "5499": "便利店食品 Convenience and speciality food",
    "5712": "家具 Furniture",
    "5722": "家电 Household appliances",
    "5732": "电子产品 Electronics",
    "5812": "餐馆 Restaurants",
    "5813": "酒吧 Bars and night-clubs",
    "5814": "快餐 Fast food",
    "5912": "药店 Drug stores",
    "5691": "服装 Clothing",
    "5651": "服装 Family clothing",
    "5661": "鞋店 Shoe stores",
    "5944": "珠宝 Jewellery",
    "5945": "玩具 Toys",
    "5941": "体育用品 Sporting goods",
    "5942": "书店 Book stores",
    "5992": "花店 Florists",
    "5995": "宠物 Pet shops",
    "5999": "其他零售 Miscellaneous retail",
    "7011": "住宿 Hotels",
    "7230": "美容美发 Beauty and barber",
    "7298": "保健美容 Health and beauty spas",
    "7297": "按摩 Massage parlours",
    "7832": "电影院 Cinemas",
    "7995": "博彩 Betting",
    "7996": "游乐园 Amusement parks",
    "8011": "诊所 Doctors",
    "8021": "牙医 Dentists",
    "5211": "建材 Building materials",
    "5251": "五金 Hardware",
    "5971": "艺术品 Art dealers",
    "6011": "取现 Cash disbursements",
    "7399": "商业服务 Business services",
    "8999": "专业服务 Professional services",
    "4121": "出租车 Taxis",
    "7523": "停车 Parking",
    "5045": "计算机批发 Computers (wholesale)",
    "5094": "珠宝批发 Jewellery (wholesale)",
}


def main():
    codes = {}
    for name in ["iso18245_official_list.csv", "visa_list.csv", "mastercard_list.csv"]:
        with open(os.path.join(HERE, "source", name), encoding="utf-8") as f:
            for row in csv.DictReader(f):
                code = row["MCC"].strip()
                if len(code) == 4 and code.isdigit() and code not in codes:
                    codes[code] = (" ".join(row["DESCRIPTION"].split()), name.replace("_list.csv", ""))
    with open(os.path.join(HERE, "mcc.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["mcc", "description", "fee_class", "daytime", "source"])
        for code in sorted(codes):
            desc, src = codes[code]
            if code in ZH:
                desc = ZH[code]
            fee = "waived" if code in WAIVED else "discount" if code in DISCOUNT else "standard"
            w.writerow([code, desc, fee, "false" if code in NIGHT else "true", src])
    print(f"wrote {len(codes)} codes")


if __name__ == "__main__":
    main()
