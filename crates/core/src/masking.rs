//! Masking of personal values for screens, responses and logs (DESIGN §3, S20).

/// `张三` → `张*`, `张三丰` → `张*丰`, `WANG^ZHIQIANG` → `W***********G`.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut out = String::with_capacity(name.len());
            out.push(chars[0]);
            out.extend(std::iter::repeat_n('*', n - 2));
            out.push(chars[n - 1]);
            out
        }
    }
}

/// `13800138000` → `138****8000`; other lengths keep the first 3 and last 4 only if long enough.
pub fn mask_phone(phone: &str) -> String {
    keep_ends(phone, 3, 4)
}

/// Resident ID numbers keep the first 4 and the last 4 characters.
pub fn mask_id_number(id: &str) -> String {
    keep_ends(id, 4, 4)
}

fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.trim().chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_as_the_design_shows() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张三丰"), "张*丰");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_id_number("11010519491231002X"), "1101**********002X");
    }

    #[test]
    fn short_values_reveal_nothing() {
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_phone("1234567"), "*******");
        assert_eq!(mask_id_number("12345678"), "********");
    }
}
