/**
 * Brazilian-Portuguese words for the simulated history. Accents, emoji (including multi-code-point
 * ones) and long lines are here on purpose: they are what breaks naive encoders.
 */

export const FIRST_NAMES = [
  'Ana',
  'João',
  'Maria',
  'José',
  'Luíza',
  'Antônio',
  'Márcia',
  'Sebastião',
  'Conceição',
  'Cláudio',
  'Fábio',
  'Letícia',
  'Júlia',
  'Vitória',
  'Caio',
  'Estêvão',
  'Inês',
  'Raí',
  'Lúcia',
  'Thaís',
  'Mônica',
  'Ângela',
  'Érica',
  'Otávio',
  'Gonçalo',
] as const;

export const LAST_NAMES = [
  'Gonçalves',
  'Araújo',
  'Conceição',
  'Simões',
  'Magalhães',
  'Assunção',
  'Brandão',
  'Falcão',
  'Guimarães',
  'Patrício',
  'Sá',
  'Nóbrega',
  'Melo',
  'Ribeiro',
  'Peçanha',
] as const;

export const NAME_DECORATIONS = [
  '',
  '',
  '',
  ' 🌻',
  ' ❤️',
  ' (trabalho)',
  ' 👩‍💻',
  ' Mãe',
  ' 🇧🇷',
  ' – vizinha',
] as const;

export const GROUP_NAMES = [
  'Família Gonçalves 👨‍👩‍👧‍👦',
  'Condomínio Ipê Amarelo',
  'Futebol de quinta ⚽',
  'Formatura 2019 🎓',
  'Vendas – Região Sul',
  'Churrasco do Zé 🔥🥩',
  'Pais da turma 3ºB',
  'Trilha & Cachoeira 🏞️',
  'Igreja São João',
  'Plantão TI 🚨',
  'Vaquinha do presente 🎁',
  'Grupo de Oração 🙏',
  'Mães do Ballet 🩰',
  'Obra da cozinha 🛠️',
] as const;

export const GREETINGS = ['Oi', 'Olá', 'Bom dia', 'Boa tarde', 'Boa noite', 'E aí', 'Opa', 'Fala'] as const;

export const PHRASES = [
  'tudo bem?',
  'já chegou em casa?',
  'amanhã não vou poder ir, desculpa',
  'você viu a mensagem do síndico?',
  'manda o endereço por favor',
  'a reunião foi remarcada para às 15h',
  'obrigado pela ajuda, de coração',
  'tô saindo agora, chego em 20 minutos',
  'não esquece o pão de queijo',
  'pagamento feito, segue o comprovante',
  'alguém tem o telefone do encanador?',
  'que saudade de vocês',
  'parabéns pelo aniversário! muita saúde',
  'vou ver e te aviso',
  'a previsão é de chuva à tarde',
  'o preço subiu de novo, R$ 12,90 o quilo',
  'consegue me ligar depois do almoço?',
  'ação de graças no sábado, confirmem presença',
  'lembrei de você quando vi isso',
  'a internet caiu aqui, respondo mais tarde',
  'é isso mesmo, pode confirmar',
  'acho que não, mas vou perguntar à Mãe',
  'fechado então',
  'kkkkkkk',
  'nossa, que coisa',
  'bom descanso',
] as const;

export const EMOJI = ['😂', '🙏', '❤️', '👍', '😅', '🎉', '😍', '🤔', '👏🏽', '🥲', '☕', '🌧️', '🇧🇷'] as const;

export const CAPTIONS = [
  'olha que lindo 😍',
  'comprovante',
  'foto da obra hoje',
  'vejam isso kkkk',
  'cardápio da semana',
  'lista de material escolar',
  'ficou ótimo!',
] as const;

export const DOCUMENT_NAMES = [
  'Boleto_março.pdf',
  'Contrato assinado.pdf',
  'Relatório de manutenção – Ipê.pdf',
  'Currículo João.docx',
  'Orçamento_cozinha.xlsx',
] as const;

export const PLACES = [
  { name: 'Padaria Pão de Açúcar', address: 'Rua São Bento, 120 – São Paulo', lat: -23.5447, lng: -46.6345 },
  { name: 'Praça da Liberdade', address: 'Belo Horizonte – MG', lat: -19.932, lng: -43.9378 },
  { name: null, address: null, lat: -22.9519, lng: -43.2105 },
  { name: 'Mercado Público', address: 'Porto Alegre – RS', lat: -30.0277, lng: -51.2287 },
] as const;

export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'] as const;

/** Area codes (DDD) spread over the country. */
export const AREA_CODES = [
  '11',
  '21',
  '31',
  '41',
  '51',
  '61',
  '71',
  '81',
  '85',
  '19',
  '27',
  '48',
  '62',
  '92',
] as const;
