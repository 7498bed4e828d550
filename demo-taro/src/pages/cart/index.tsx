import { useState } from 'react';
import { Text, View } from '@tarojs/components';
import Taro from '@tarojs/taro';
import type { CardPayFailDetail, CardPaySuccessDetail } from '../../../../types/taro-jsx';
import './index.css';

interface Item {
  name: string;
  qty: number;
  unit: number;
}

const ITEMS: Item[] = [
  { name: '抹茶拿铁 Matcha latte', qty: 1, unit: 1800 },
  { name: '肉桂卷 Cinnamon roll', qty: 2, unit: 650 },
];
const yuan = (minor: number) =>
  `¥${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
const total = ITEMS.reduce((sum, i) => sum + i.qty * i.unit, 0);

// The cart: the total in minor units goes to the plugin's checkout; its events come back as
// React props (onSuccess for `success`, onStatechange for `statechange`).
export default function Cart() {
  const [state, setState] = useState('idle');
  const [outcome, setOutcome] = useState('');
  const onSuccess = (e: { detail: CardPaySuccessDetail }) => {
    setOutcome(`已支付 ${yuan(e.detail.payment.charged)}（${e.detail.payment.paymentId}）`);
    void Taro.showToast({ title: '支付成功', icon: 'success' });
  };
  const onFail = (e: { detail: CardPayFailDetail }) => {
    if (e.detail.error.code !== 'scan_cancelled') setOutcome(`未完成：${e.detail.error.code}`);
  };
  return (
    <View className="cart">
      <View className="cart__title">购物车 · Cart</View>
      {ITEMS.map((i) => (
        <View key={i.name} className="cart__item">
          <Text>
            {i.name} × {i.qty}
          </Text>
          <Text>{yuan(i.qty * i.unit)}</Text>
        </View>
      ))}
      <View id="demo-total" className="cart__total">
        合计 {yuan(total)}
      </View>
      <cardpay-checkout
        id="cardpay-checkout"
        amount={total}
        description={ITEMS.map((i) => `${i.name} × ${i.qty}`).join('，')}
        locale="zh_CN"
        onStatechange={(e) => setState(e.detail.state)}
        onSuccess={onSuccess}
        onFail={onFail}
        onCancel={() => setOutcome('已取消')}
      />
      {outcome ? (
        <View id="demo-outcome" className="cart__outcome" aria-role="alert" data-state={state}>
          {outcome}
        </View>
      ) : null}
    </View>
  );
}
